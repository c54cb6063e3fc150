"""The reference writer's policies (engine/policy.py): free space (FORMAT.md §3) and
checkpoints (§8.4). The files they make are checked elsewhere (test_storage,
test_determinism, the golden vectors); here, the numbers."""

from __future__ import annotations

import pytest

from myosotis.engine import policy


@pytest.mark.parametrize(("start", "end", "size"), [
    (32, 152, 4096),  # a sixteenth of nothing: one block
    (4000, 4200, 8192),  # 4200 + 262, rounded up to blocks
    (32, 3 << 20, 3 << 20),  # a frame larger than the space it would get: none
    (100 << 20, (100 << 20) + 100, (101 << 20) + 4096),  # at most 1 MiB (plus rounding)
])
def test_free_space_is_a_sixteenth_of_the_file_at_most_1_mib_in_whole_blocks(
        start: int, end: int, size: int) -> None:
    assert policy.free_space_end(start, end) == size


def test_a_checkpoint_is_due_after_the_floor_or_one_image_of_commit_bytes() -> None:
    floor = policy.CHECKPOINT_FLOOR
    assert not policy.checkpoint_due(floor - 1, 0, floor)
    assert policy.checkpoint_due(floor, 0, floor)
    assert not policy.checkpoint_due(floor, 3 * floor, floor)  # a large state: its image size
    assert policy.checkpoint_due(3 * floor, 3 * floor, floor)
