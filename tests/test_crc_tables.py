"""The CRC32C tables (FORMAT.md §1): csrc/myo_helper.c holds exactly the output of
csrc/gen_crc_tables.py, and the pure-Python twin builds the same tables.

These hold whichever helper is in use: they read the C source, not the build.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from myosotis.format import _helper_py as pure
from myosotis.format.constants import CRC32C_POLY

CSRC = Path(__file__).resolve().parents[1] / "csrc"
SCRIPT = CSRC / "gen_crc_tables.py"
C_FILE = CSRC / "myo_helper.c"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """csrc/gen_crc_tables.py, loaded as a module (csrc/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_crc_tables", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60)


def test_committed_c_tables_are_the_generators_output(gen: ModuleType) -> None:
    text = C_FILE.read_text(encoding="utf-8")
    _, block, _ = gen.split(text)
    assert block == gen.generate(CRC32C_POLY, gen.hw_block(text))
    done = run_script("--check")
    assert done.returncode == 0, done.stderr


def test_the_generator_reads_the_polynomial_of_constants_py(gen: ModuleType) -> None:
    assert gen.crc32c_poly() == CRC32C_POLY == 0x82F63B78  # FORMAT.md §1


def test_the_twins_tables_are_the_c_tables(gen: ModuleType) -> None:
    assert [list(t) for t in pure._TABLES] == gen.slicing_tables(CRC32C_POLY)


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("b", [1, 0x80, 0xA5, 0xFF])
def test_shift_table_entry_is_the_register_after_a_block_of_zeros(
        gen: ModuleType, k: int, b: int) -> None:
    """crc_shift_block[k][b]: the raw register from b << 8k after HW_BLOCK zero bytes,
    here computed the slow way, by the twin's register update over the zeros."""
    block = gen.hw_block(C_FILE.read_text(encoding="utf-8"))
    table = gen.shift_tables(gen.slicing_tables(CRC32C_POLY)[0], block)
    assert table[k][b] == pure._crc_update(b << (8 * k), bytes(block))


def test_check_mode_finds_an_edited_table_and_a_run_restores_it(tmp_path: Path) -> None:
    copy = tmp_path / "myo_helper.c"
    shutil.copy(C_FILE, copy)
    text = copy.read_text(encoding="utf-8")
    edited = text.replace("0xf26b8303", "0xf26b8304", 1)  # crc_table[0][1]
    assert edited != text
    copy.write_text(edited, encoding="utf-8")
    done = run_script("--check", str(copy))
    assert done.returncode == 1 and "out of date" in done.stderr
    assert run_script(str(copy)).returncode == 0
    assert copy.read_text(encoding="utf-8") == text
    assert run_script("--check", str(copy)).returncode == 0


def test_the_shift_table_follows_hw_block(tmp_path: Path) -> None:
    """The shift table is generated for the HW_BLOCK the C code defines: a C file whose
    HW_BLOCK changed without a new table fails --check."""
    copy = tmp_path / "myo_helper.c"
    text = C_FILE.read_text(encoding="utf-8")
    copy.write_text(text.replace("#define HW_BLOCK 8192", "#define HW_BLOCK 4096"),
                    encoding="utf-8")
    assert run_script("--check", str(copy)).returncode == 1
