"""Regenerate tests/data/dump-1.1.ctdump, the dump format 1.1 fixture.

    PYTHONPATH=src python tests/data/make_dump_1_1.py

Not run by the tests: tests/test_dump_compat.py loads the committed file,
so that every later release proves it still reads what a 1.1 writer
wrote.  Run this only with a classtrack whose writer writes format 1.1 (it
refuses otherwise); a later format gets a fixture of its own.

The content is the 1.0 fixture's (make_dump_1_0.py says how each value is
made) plus what 1.1 added, retained sizes, measured at the last snapshot
('end') only:

  retained     record i: 3000 + 100 * i
  shared       4321 bytes kept alive only by several together
"""
import os
import sys

import make_dump_1_0

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dump-1.1.ctdump")


def with_retained(data):
    rows = []
    for k, row in enumerate(data[10]):
        retained = shared = None
        if k == len(data[10]) - 1:
            idx = memoryview(row[9]).cast("I")
            retained = b"".join((3000 + 100 * i).to_bytes(8, sys.byteorder) for i in idx)
            shared = 4321
        rows.append(tuple(row) + (retained, shared))
    return data[:10] + (rows,)


def main():
    columns = make_dump_1_0.as_columns(make_dump_1_0.build())
    data = with_retained(make_dump_1_0.normalize(columns))
    make_dump_1_0.write_fixture(data, (1, 1), OUT, "make_dump_1_1")


if __name__ == "__main__":
    main()
