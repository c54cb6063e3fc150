"""The reference writer's policies, with the reason for each value.

Any policy makes valid files (FORMAT.md calls these informative); what is
here decides only speed and size. Two writers with the same policies write
identical bytes, so a change here changes the bytes new files get (the golden
vectors of formatspec/ pin them). The storage layer does not import the
engine: it is handed the free-space policy when a file is opened.
"""

from __future__ import annotations

from typing import Final

CHECKPOINT_FLOOR: Final = 2 << 20
"""Commit bytes after which a checkpoint may be written (FORMAT.md §8.4), by the
version-2 policy (a whole image per checkpoint): the writer uses it only when
told to (``checkpoint_floor``, a test hook that pins the version-1/2 vectors);
by default it writes layers (LAYER_COMMITS).

A checkpoint is due once the commits since the newest one hold
``max(CHECKPOINT_FLOOR, size of that checkpoint's image)`` bytes: opening a
file then replays at most about one state's worth of commits, and a small
state is not checkpointed after every few commits (2 MiB replays in well
under a second)."""


def checkpoint_due(bytes_since_checkpoint: int, last_image_size: int, floor: int) -> bool:
    """Whether the writer appends a checkpoint after a commit (see CHECKPOINT_FLOOR):
    ``bytes_since_checkpoint`` payload bytes of commits since the newest checkpoint
    (or genesis, or the start), whose image had ``last_image_size`` bytes."""
    return bytes_since_checkpoint >= max(floor, last_image_size)


LAYER_COMMITS: Final = 32
"""Commits after which the writer appends a layer (FORMAT.md §8.7), unless
LAYER_BYTES of commits come first. Opening a file replays at most this many
commits after its newest layer, and reading a past state decodes at most this
many: at the ~45 µs a small commit takes to replay in Python (measured on a
loaded 2-core machine), 32 of them are about 1.5 ms, inside the 3 ms open of
issue #10 (64 were not); fewer would write layers more often (each costs a
frame and O(log) rewrites of what it holds: file size, write amplification)."""

LAYER_BYTES: Final = 256 << 10
"""Bytes of commit payloads after which a layer is due, if LAYER_COMMITS have not
come first: large commits (a bulk load) are replayed at about 50 MB/s, so
256 KiB bounds replay at open to a few ms whatever the commit size."""

FULL_LAYER_SHARE: Final = 1
"""A full layer replaces the stack when the sparse layers (the new one included)
would hold at least 1/FULL_LAYER_SHARE of the full image's bytes. A full layer
costs the whole state, and comes after as many bytes of sparse layers: so
layers write O(log n) times each change plus at most as much again (write
amplification, bench/run.py), and a stack never reads more sparse bytes than
its full image holds."""


LAYER_FANOUT: Final = 4
"""Layers of one size tier merged into one (FORMAT.md §8.7): a layer absorbs the
layers on top of the stack once three of them are in its tier or below, tiers
being powers of 4 of LAYER_UNIT. Each change is rewritten about
log4(state / LAYER_UNIT) times (against log2 with 2), and a stack holds at most
3 layers per tier: a read searches each in place at C speed, so more layers
cost little, while fewer rewrites cut write amplification and file growth.
Tiers go by size, not by count, so that the few large layers of a bulk load
are not rewritten by every few small commits after it."""

LAYER_UNIT: Final = 16 << 10
"""The size of a tier-0 layer (FORMAT.md §8.7): about what 32 small commits
change (a few hundred node records); layers under 4 units are tier 0."""

LAYER_WRITE_CHUNK: Final = 1 << 20
"""Bytes of a layer's image held at a time while it is written: the image is
streamed to the file in chunks of about this size (a full layer would otherwise
be held whole, the peak memory of a bulk ingest). Large enough that a chunk's
system call costs little against copying its records in."""

RESIDENT_DROP_BYTES: Final = 4 << 20
"""After a layer whose merge read at least this many bytes through the map (a
full layer reads the whole state), the writer drops the pages it has read from
its resident set (FileMap.drop_resident): they would count in its memory until
the maps go. Not after every layer: a drop costs a system call per live map
(old maps live while a cached snapshot holds a view), which small layers,
reading little, would pay for nothing."""


def layer_due(commits_since: int, bytes_since: int, every: int = LAYER_COMMITS,
              max_bytes: int = LAYER_BYTES) -> bool:
    """Whether the writer appends a layer after a commit: ``commits_since`` commits
    (``bytes_since`` payload bytes) since the newest snapshot (or the start)."""
    return commits_since >= every or bytes_since >= max_bytes


FREE_SPACE_GRANULE: Final = 4096
"""Free space ends on a multiple of this: the page and file-system block size."""

FREE_SPACE_SHARE: Final = 16
"""Free space is at most a sixteenth of the file: appends grow the file about
once per 6% of its size, and the zeros cost at most that much."""

FREE_SPACE_MAX: Final = 1 << 20
"""The most free space reserved at once (1 MiB): past a 16 MiB file, a sixteenth
would make the one commit that grows the file write that many more zeros, for
growth that is already rare."""


def free_space_end(frame_start: int, frame_end: int) -> int:
    """File size a durable writer leaves after a frame ``[frame_start, frame_end)``
    that did not fit in the free space (FORMAT.md §3).

    A sixteenth of the file, at most 1 MiB, rounded up to whole 4 KiB blocks.
    None (``frame_end``) after a frame at least that large: the next such frame
    would not fit either, so the zeros would only be written twice.
    """
    g = FREE_SPACE_GRANULE
    size = (frame_end + min(frame_end // FREE_SPACE_SHARE, FREE_SPACE_MAX) + g - 1) // g * g
    return size if frame_end - frame_start < size - frame_end else frame_end


TIMETRAVEL_BYTES: Final = 1 << 20
"""Commit payload bytes a handle keeps decoded for time travel (engine/timetravel.py),
the least recently used segments dropped first; the head's segment and the
one being read are kept whatever their size. Decoded, small commits take
about 17 times their payload bytes in Python objects (measured on W1's
commits of ~110 bytes: mutations, their values, the per-node index), so
1 MiB of payloads is under 20 MiB: the whole history of W1's 5,000 commits
(0.55 MiB, each decoded once however randomly it is read), a bounded window
of a longer one. Bounded by bytes, not by segments: a segment holds from one
commit to LAYER_COMMITS commits or LAYER_BYTES."""


TIMETRAVEL_NODES: Final = 1 << 12
"""Nodes of past states a handle keeps decoded from their base snapshots (a layer
stack), keyed by that snapshot (engine/segments.py BaseNodes): reading a node
at many commits after one snapshot, or again, decodes its record once. 4,096
records of W1's five fields take about 4.5 MiB (measured: ~1.1 KiB each); an
evicted one is one record decoded in place again (FORMAT.md §8.1)."""


NODE_CACHE: Final = 1 << 16
"""Nodes a committed state keeps decoded after reading them from its base image
(a checkpoint or genesis), the most recently decoded ones. Changed nodes are
not counted: they are the state. 65,536 nodes of a few fields each take tens
of MiB at most, and re-reading an evicted node decodes one record in place
(FORMAT.md §8.1), so a scan of a larger state runs in bounded memory."""


REBASE_KEEP: Final = 1 << 14
"""A committed state rebased on a new snapshot keeps its changed nodes decoded (in
its NODE_CACHE) when its cache then holds at most this many nodes: a program
that loads a few thousand nodes and then works on them finds them decoded, while
a bulk load's nodes (10,000s per commit) are not all kept: each costs about a
kilobyte of Python objects that every full garbage collection walks (measured:
on 200,000 nodes in 20 commits, keeping them all doubled the ingest time), for
reads that the snapshot serves by decoding one record in place. Nodes that are
read are cached up to NODE_CACHE as before."""


SPARE_MIN: Final = 256
"""Lists and maps of at least this many items get a spare (engine/graph.py
GraphState.take_spare): the staged edit of a committed container copies it
(copy on write), O(items) per commit; with a spare, the container the last
commit replaced is brought up to date instead, O(edits). Below 256 items the
copy costs about a microsecond, less than keeping a spare."""

SPARE_MAX: Final = 16
"""Spares a committed state keeps (the oldest go first): each holds a second
copy of a large container, so they are few; the containers a program appends
to commit after commit are few too."""


COMMIT_ID_CACHE: Final = 1 << 12
"""Commit ids a handle remembers (the newest ones computed or written): a
forgotten one is BLAKE3 of its commit's payload again (microseconds), so a
handle that lives for millions of commits keeps a bounded window, not an
entry per commit."""

SNAPSHOT_CACHE: Final = 1024
"""Checkpoint and layer stacks a handle keeps checked and open (the least
recently used go first): a writer appends a layer every LAYER_COMMITS
commits, and one that runs for long must not keep one entry per layer.
Reading one again costs its head (R88), and its blocks' CRCs as they are
read (each block is checked once per cached stack, R89). An entry is a few
objects over the map, about 2 KiB measured whatever the image's size, so
1,024 of them (about 2 MiB) hold the layers of 32,768 commits: random reads
of the past of such a file check each layer once; 64 made W1's random reads
(157 layers) check most of them again at every read."""


# The history index (engine/history_index.py): a writer moves the rows it keeps
# in memory to the sidecar once they reach this many (and at sync, checkpoint
# and close), so a commit pays one SQLite transaction per ~3,000 small commits.
INDEX_FLUSH_ROWS: Final = 16_384

# While a query catches up a long history, rows are flushed at this many, so
# indexing a large file holds a bounded number of them in memory.
INDEX_CATCHUP_ROWS: Final = 200_000

# A writer behind the file (rows a killed writer never flushed, a sidecar
# deleted or written before the index existed) decodes missing commits at each
# of its own commits, at least two and until this many rows (about 10 us a row
# of a small commit, so ~3 ms a step): it is current after at most as many
# commits as it was behind (far fewer when they are small), and no commit pays
# for the whole gap (a full rebuild of a large file takes seconds), instead of
# leaving every reader to decode the gap, which grew with each of its commits,
# at every open while it held the lock.
INDEX_BEHIND_STEP_ROWS: Final = 256
