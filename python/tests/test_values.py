"""Arguments and results as they cross: the extension encodes a map's
arguments and decodes its results in Rust (python/src/values.rs), and must
agree with Python's ``json`` exactly, for generated values as well as the
edge cases (integers past 64 bits, floats at every magnitude, NaN, keys of
every kind, nesting, values ``json`` refuses)."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import python_tasks_available
from wasmpool import Pool, _native
from wasmpool.errors import BadArguments, InvalidInput

TASKS = Path(__file__).resolve().parents[2] / "examples" / "python" / "tasks.py"


def _json_default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    raise TypeError(type(value).__name__)


def python_json(value):
    """What ``json`` makes of ``value`` (the reference)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    st.binary(max_size=8),
)
keys = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none(),
                 st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@given(values)
@settings(max_examples=300, deadline=None)
def test_arguments_are_the_json_that_json_writes(value):
    # The same JSON value (the text may differ: `json` escapes non-ASCII,
    # and writes 1e16 as 1e+16).
    assert json.loads(_native.dumps(value)) == json.loads(python_json(value))


def test_what_json_writes_for_nan_keys_and_huge_numbers():
    assert _native.dumps(float("nan")) == "NaN"
    assert _native.dumps([float("inf"), -float("inf")]) == "[Infinity,-Infinity]"
    assert _native.dumps({1: "a", 2.5: "b", False: "c", None: "d"}) == '{"1":"a","2.5":"b","false":"c","null":"d"}'
    assert _native.dumps({1e16: 0}) == '{"1e+16":0}'
    assert _native.dumps(10**30) == "1" + "0" * 30
    assert _native.dumps(-(2**64)) == str(-(2**64))
    assert _native.dumps(b"\x00\xff") == "[0,255]"
    assert _native.dumps(bytearray(b"ab")) == "[97,98]"
    assert _native.dumps(memoryview(b"a")) == "[97]"


class _Arrayish:
    def tolist(self):
        return [1, (2, 3)]


def test_array_likes_become_their_list_and_the_rest_is_refused_as_json_refuses_it():
    assert _native.dumps(_Arrayish()) == "[1,[2,3]]"
    with pytest.raises(TypeError, match="a set cannot be a task's argument"):
        _native.dumps({1, 2})
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        _native.dumps({(1, 2): 3})
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested more than 1000"):
        _native.dumps(loop)
    # A lone surrogate (what `surrogateescape` makes of undecodable bytes)
    # as `json` writes it; a `tolist` that raises raises as it is.
    assert _native.dumps(["\ud800", {"\udcff": 1}]) == json.dumps(["\ud800", {"\udcff": 1}], separators=(",", ":"))

    class Broken:
        def tolist(self):
            raise KeyError("inside tolist")

    with pytest.raises(KeyError, match="inside tolist"):
        _native.dumps(Broken())


@pytest.fixture(scope="module")
def rust_pool(module):
    with Pool(module, workers=2) as pool:
        yield pool


@given(st.lists(st.floats(min_value=0, allow_nan=False, allow_infinity=False), max_size=50))
@settings(max_examples=40, deadline=None)
def test_float_results_come_back_exact(rust_pool, xs):
    assert rust_pool.map("sqrt", xs) == [math.sqrt(x) for x in xs]


def test_integer_results_come_back_exact_past_18_digits(module):
    big = 2**62
    pairs = [(big, big - 1), (-big, -big), (10**17, 10**17), (-5, 3), (0, 0)]
    with Pool(module, workers=2) as pool:
        assert pool.map("add", pairs) == [a + b for a, b in pairs]
        # Not i64: the task refuses it, naming the argument; the input is kept.
        with pytest.raises(BadArguments) as caught:
            pool.call("add", 2**64, 1)
        assert caught.value.input == (2**64, 1)


def test_a_bad_input_fails_alone_with_its_value(pool):
    results = pool.map_each("sqrt", [4.0, float("nan"), 9.0])
    assert results[0] == 2.0 and results[2] == 3.0
    assert isinstance(results[1], InvalidInput) and math.isnan(results[1].input)


def test_an_input_json_refuses_ends_the_map_after_the_inputs_before_it(pool):
    with pytest.raises(TypeError, match=r"input 2 \(\{1, 2\}\): a set cannot be a task's argument"):
        pool.map("sqrt", [1.0, 4.0, {1, 2}, 9.0])
    it = pool.imap("sqrt", iter([1.0, 4.0, {1, 2}, 9.0]))
    assert next(it) == 1.0 and next(it) == 2.0
    with pytest.raises(TypeError, match="input 2"):
        next(it)


def test_a_call_error_carries_the_arguments_as_written(pool):
    with pytest.raises(BadArguments) as caught:
        pool.call("sqrt", "four")
    assert caught.value.input == "four"


def test_an_exception_of_the_inputs_own_code_ends_the_map_as_it_is(pool):
    class Broken:
        def tolist(self):
            raise KeyError("inside tolist")

    with pytest.raises(KeyError, match="inside tolist"):
        pool.map("sqrt", [1.0, Broken()])


def test_closing_an_imap_from_its_messages_callback_ends_it(pool):
    # collatz(27) sends 111 messages; the first one closes the map.
    it = pool.imap("collatz", [27, 97, 871], messages=lambda index, message: it.close())
    assert list(it) == []


def test_a_generator_is_pulled_one_input_at_a_time(pool):
    pulled = []

    def inputs():
        for x in range(1000):
            pulled.append(x)
            yield float(x)

    it = pool.imap("sqrt", inputs())
    assert next(it) == 0.0
    # A window of chunks of one input per worker, not batches of 64.
    assert len(pulled) < 64
    it.close()


def test_len_of_a_map_over_a_generator_says_why(pool):
    with pytest.raises(TypeError, match="inputs have no length"):
        len(pool.imap("sqrt", (x for x in range(3))))
    assert len(pool.imap("sqrt", range(3))) == 3


@pytest.fixture(scope="module", params=["threads", "processes"])
def echo_pool(request):
    with Pool(TASKS, workers=2, processes=(request.param == "processes")) as pool:
        yield pool


@python_tasks_available()
@given(st.lists(values, max_size=20))
@settings(max_examples=25, deadline=None)
def test_values_through_a_python_task_are_what_json_makes_of_them(echo_pool, items):
    # A Python task decodes and encodes with `json`: tuples come back as
    # lists and keys as strings, exactly as `json` round-trips them.
    assert echo_pool.map("echo", items) == [json.loads(python_json(item)) for item in items]
