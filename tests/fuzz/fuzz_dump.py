"""Coverage-guided fuzzing of the dump reader (atheris + libFuzzer).

The reader is C, so the extension is built with clang's libFuzzer
instrumentation (CLASSTRACK_FUZZ=1, see setup.py) and run with atheris's
ASan+libFuzzer runtime preloaded; .ci/run does this for a bounded time:

    LD_PRELOAD=$(python -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))') \\
        python tests/fuzz/fuzz_dump.py tests/fuzz/corpus -max_total_time=60

Any input that makes the reader raise something other than DumpError, or
crash, is a failure; save it under tests/fuzz/regressions/ so
tests/test_dump_safety.py replays it forever.
"""
import sys

import atheris

with atheris.instrument_imports():
    from classtrack import _core


def test_one_input(data: bytes) -> None:
    info: dict = {}
    try:
        # odd first byte or not, both ways of asking (with and without info)
        _core.dump_read(data, info) if len(data) % 2 else _core.dump_read(data)
    except _core.DumpError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
