"""Environment for the sanitizer builds' programs: suppressions for what the prebuilt runtimes do (and the one
object edgebit keeps for the process's life on purpose), reports as a non-zero exit."""

from pathlib import Path

_TESTS = Path(__file__).resolve().parents[2] / "runtime_ops" / "tests"
LSAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:exitcode=66", "LSAN_OPTIONS": f"suppressions={_TESTS / 'lsan.supp'}"}
TSAN_ENV = {"TSAN_OPTIONS": f"suppressions={_TESTS / 'tsan.supp'}:halt_on_error=1:exitcode=66"}
