"""The pytest session inside which the oracle checks the heap (run by
heap_oracle.py, never collected by the project's own test run).

The check runs inside a test that uses yield fixtures (suspended
generators pytest holds), inside a coroutine of a running asyncio loop
with pending tasks, suspended async generators and coroutines, while
threads are blocked in waits and a zoo of everyday objects is alive.
"""
import __main__ as oracle

import array
import asyncio
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import itertools
import os
import re
import sys
import threading
import types
import weakref

import pytest


@pytest.fixture
def suspended_resource():
    handle = {"opened": True}
    yield handle
    handle["opened"] = False


@pytest.fixture(scope="module")
def module_resource():
    yield [object() for _ in range(10)]


class Point(collections.namedtuple("Point", "x y z")):
    __slots__ = ()


Pair = collections.namedtuple("Pair", "left right")


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class Flags(enum.IntFlag):
    A = 1
    B = 2
    C = 4


class Level(enum.IntEnum):
    LOW = 10
    HIGH = 2 ** 70


@dataclasses.dataclass
class Record:
    name: str
    values: list
    when: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple


class Slotted:
    __slots__ = ("a", "b", "c")

    def __init__(self, i):
        self.a, self.b, self.c = i, str(i), [i]


class SlottedWeak:
    __slots__ = ("a", "__weakref__")

    def __init__(self, i):
        self.a = i


class Plain:
    def __init__(self, i):
        self.i = i
        self.name = "p%d" % i
        if i % 3 == 0:
            self.extra = {i: i}


class Dicted:
    def __init__(self, i):
        self.i = i
        _ = self.__dict__   # materialised on 3.11+


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyBytes(bytes):
    pass


class MyTuple(tuple):
    pass


class MyList(list):
    pass


class MyDict(dict):
    pass


class MySet(set):
    pass


class MyFrozenSet(frozenset):
    pass


class MyFloat(float):
    pass


class MyComplex(complex):
    pass


class MyByteArray(bytearray):
    pass


class MyIntSlots(int):
    __slots__ = ()


class MyTupleDict(tuple):
    """A var-sized subclass with a __dict__."""


def gen(n):
    for i in range(n):
        yield i


def deep_gen(n):
    local = list(range(n))
    yield from gen(len(local))


async def agen(n):
    for i in range(n):
        yield i
        await asyncio.sleep(0)


async def waiter(event):
    await event.wait()


async def sleeper():
    await asyncio.sleep(3600)


def raise_nested(depth):
    if depth == 0:
        raise ValueError("deep")
    local = [depth] * depth
    raise_nested(depth - 1)
    return local


def make_zoo():
    zoo = {}
    zoo["plain"] = [Plain(i) for i in range(300)]
    zoo["dicted"] = [Dicted(i) for i in range(100)]
    zoo["slotted"] = [Slotted(i) for i in range(100)]
    zoo["slotted_weak"] = [SlottedWeak(i) for i in range(50)]
    zoo["weakrefs"] = [weakref.ref(o) for o in zoo["slotted_weak"]]
    zoo["points"] = [Point(i, i + 1, i + 2) for i in range(200)]
    zoo["pairs"] = [Pair(str(i), i) for i in range(200)]
    zoo["enums"] = [Colour.RED, Flags.A | Flags.C, Level.HIGH, Flags(7)]
    now = datetime.datetime(2026, 12, 3, 12, 0, 0)
    zoo["datetimes"] = [now + datetime.timedelta(seconds=i) for i in range(100)]
    zoo["aware"] = [datetime.datetime(2026, 1, 1, i % 24, tzinfo=datetime.timezone.utc)
                    for i in range(100)]
    zoo["times"] = [datetime.time(13, 1), datetime.time(1, 2, tzinfo=datetime.timezone.utc)]
    zoo["dates"] = [datetime.date(2000 + i, 1, 1) for i in range(20)]
    zoo["tz"] = [datetime.timezone(datetime.timedelta(hours=i)) for i in range(1, 5)]
    zoo["records"] = [Record(str(i), [i], now) for i in range(50)]
    zoo["frozen"] = [Frozen(i, (i, i)) for i in range(50)]
    zoo["decimals"] = [decimal.Decimal(i) / 7 for i in range(1, 100)]
    zoo["fractions"] = [fractions.Fraction(i, 7) for i in range(1, 50)]
    zoo["re"] = [re.match(r"(\w+)-(\d+)", "item-%d" % i) for i in range(100)]
    zoo["patterns"] = [re.compile("x%d(y+)" % i) for i in range(20)]
    zoo["bigints"] = [3 ** (i * 7) for i in range(200)]
    zoo["sums"] = [10 ** 30 + i for i in range(100)] + [2 ** 100 - 2 ** 99 - i for i in range(100)]
    # subtraction of near-equal big ints: x_sub allocates the larger
    # operand's digits, normalisation keeps fewer (the documented bound)
    zoo["near_diffs"] = [(2 ** 200 + 2 ** (60 + i)) - 2 ** 200 for i in range(50)]
    zoo["diffs"] = [(10 ** 40 + i) - 10 ** 40 * (i % 2) for i in range(100)]
    zoo["ints_from_str"] = [int("9" * (i + 10)) for i in range(50)]
    zoo["floats"] = [i / 3 for i in range(200)]
    zoo["complex"] = [complex(i, -i) for i in range(50)]
    zoo["strs"] = ["ascii-%d" % i for i in range(100)] + ["latin-é%d" % i for i in range(100)] \
        + ["bmp-\u20ac%d" % i for i in range(100)] + ["astral-\U0001f600%d" % i for i in range(100)]
    zoo["bytes"] = [b"x" * i for i in range(2, 100)]
    zoo["bytearrays"] = [bytearray(b"y" * i) for i in range(100)]
    zoo["subclasses"] = [
        MyInt(i * 1000) for i in range(50)] + [MyInt(0), MyInt(-5), MyIntSlots(2 ** 80)] + [
        MyStr("s%d" % i) for i in range(50)] + [MyStr("\u20ac" * 5)] + [
        MyBytes(b"b" * i) for i in range(50)] + [
        MyTuple(range(i)) for i in range(50)] + [
        MyList(range(i)) for i in range(50)] + [
        MyDict(a=i) for i in range(50)] + [
        MySet(range(i)) for i in range(20)] + [
        MyFrozenSet(range(i)) for i in range(20)] + [
        MyFloat(i) for i in range(20)] + [MyComplex(1, i) for i in range(20)] + [
        MyByteArray(b"z" * i) for i in range(20)]
    tds = [MyTupleDict(range(i)) for i in range(20)]
    for i, t in enumerate(tds):
        t.tag = i
    zoo["tuple_dicts"] = tds
    zoo["containers"] = [
        collections.deque(range(i * 10)) for i in range(20)] + [
        collections.OrderedDict((j, j) for j in range(i)) for i in range(20)] + [
        collections.defaultdict(list, {i: [i]}) for i in range(20)] + [
        collections.Counter("abracadabra" * i) for i in range(10)] + [
        array.array("d", range(i)) for i in range(20)] + [
        memoryview(b"abcdef" * i) for i in range(1, 10)] + [
        set(range(i)) for i in range(30)] + [frozenset(range(i)) for i in range(30)] + [
        {j: str(j) for j in range(i)} for i in range(50)] + [
        list(range(i)) for i in range(50)] + [tuple(range(i)) for i in range(50)]
    zoo["iterators"] = [iter([1, 2, 3]), itertools.count(5), itertools.chain([1], [2]),
                        map(str, [1, 2]), zip([1], [2]), enumerate("ab"),
                        itertools.groupby("aabb"), reversed([1, 2])]
    zoo["callables"] = [functools.partial(max, 1), functools.lru_cache()(lambda x: x),
                        lambda: None, types.SimpleNamespace(a=1, b=2), property(lambda s: 1),
                        staticmethod(len), classmethod(len)]
    zoo["generators"] = []
    for i in range(200):
        g = deep_gen(i % 7 + 2)
        next(g)
        zoo["generators"].append(g)
    zoo["fresh_generators"] = [gen(i) for i in range(50)]
    excs = []
    for i in range(30):
        try:
            raise_nested(i % 6)
        except ValueError as e:
            excs.append(e)
    try:
        try:
            raise KeyError("inner")
        except KeyError as e:
            raise RuntimeError("outer") from e
    except RuntimeError as e:
        excs.append(e)
    zoo["exceptions"] = excs
    zoo["tracebacks"] = [e.__traceback__ for e in excs]
    zoo["frames"] = [sys._getframe()]
    f = sys._getframe()
    while f is not None:
        zoo["frames"].append(f)
        f = f.f_back
    zoo["frames"] += [tb.tb_frame for tb in zoo["tracebacks"]]
    zoo["locals_frames"] = [(lambda: sys._getframe())() for _ in range(20)]
    zoo["code"] = [compile("x = %d" % i, "<zoo>", "exec") for i in range(20)]
    zoo["modules"] = [types.ModuleType("zoo_mod_%d" % i) for i in range(5)]
    zoo["classes"] = [type("Dyn%d" % i, (object,), {"a": i}) for i in range(20)]
    zoo["slices"] = [slice(1, i) for i in range(20)]
    zoo["ranges"] = [range(i) for i in range(20)]
    zoo["cells"] = [(lambda v: (lambda: v))(i).__closure__ for i in range(20)]
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        base = np.arange(10000, dtype=np.float64)
        zoo["numpy"] = [base, base[::2], base.reshape(100, 100), base[10:20],
                        np.zeros((3, 4, 5)), np.array(["a", "bb"]), np.array([1, "x"], dtype=object),
                        np.float64(1.5), np.int32(3)]
    return zoo


def run_check_in_loop(extra):
    async def main():
        event = asyncio.Event()
        tasks = [asyncio.ensure_future(waiter(event)) for _ in range(20)]
        tasks += [asyncio.ensure_future(sleeper()) for _ in range(5)]
        agens = [agen(5) for _ in range(20)]
        for a in agens:
            await a.__anext__()
        coros = [sleeper() for _ in range(10)]   # created, not yet awaited
        await asyncio.sleep(0)

        thread_event = threading.Event()
        threads = [threading.Thread(target=thread_event.wait, name="blocked-%d" % i,
                                    daemon=True) for i in range(4)]
        lock = threading.Lock()
        lock.acquire()
        threads.append(threading.Thread(target=lock.acquire, name="lock-waiter", daemon=True))
        for t in threads:
            t.start()
        zoo = None
        try:
            zoo = make_zoo()
            per_type = oracle.check(oracle.census())
        finally:
            thread_event.set()
            lock.release()
            for t in threads:
                t.join()
            event.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for a in agens:
                await a.aclose()
            for c in coros:
                c.close()
        del zoo
        return per_type

    return asyncio.run(main())


def test_oracle(suspended_resource, module_resource):
    extra = {"imported_modules": int(os.environ.get("CT_ORACLE_IMPORTED", "0"))}
    per_type = run_check_in_loop(extra)
    extra["numpy"] = "numpy" in sys.modules
    oracle.write_report(per_type, extra)
