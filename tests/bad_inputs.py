"""Deliberately bad user functions, refused by symgrad; used by tests/test_errors.py.

The line symgrad must point at carries a marker comment `# BAD: <case id> [<case id> ...]`.
The tests find each line by its marker, so functions can be added, moved or reordered freely.
Functions without a marker are good helpers (runtime errors come from how they are called).
"""
# ruff: noqa: F841, F821, E731

import functools
import math

import numpy as np

from symgrad import no_grad

COUNTER = 0.0


class Point:
    """A user class: calling it inside a traced function has no rule."""

    def __init__(self, x):
        self.x = x


# --- good helpers for runtime and wrt errors -----------------------------------------------------


def product(x, y):  # BAD: wrt-missing wrt-range wrt-type wrt-static-clash static-missing
    return x * y


def good(x):
    return x * x * x


def constant():  # BAD: no-params
    return 1.0


def static_loop(x, n):
    y = x
    for _ in range(n):  # BAD: range-traced range-float-static
        y = y * x
    return y


# --- syntax the fence refuses: grad(f) raises at decoration time ----------------------------------


def lambda_inside(x):
    double = lambda t: 2.0 * t  # BAD: lambda
    return double(x)


def set_comp(x):
    ys = {x * i for i in range(3)}  # BAD: setcomp
    return x


def generator_filter_traced(x, y):
    return sum(v for v in (x, y) if v > 0.0)  # BAD: genexp-traced-filter


def try_block(x):
    try:  # BAD: try
        y = math.log(x)
    except ValueError:
        y = 0.0
    return y


def global_stmt(x):
    global COUNTER  # BAD: global
    COUNTER = x
    return x


def _make_nonlocal():
    total = 0.0

    def nonlocal_stmt(x):
        nonlocal total  # BAD: nonlocal
        total = total + x
        return x

    return nonlocal_stmt


nonlocal_stmt = _make_nonlocal()


def yield_value(x):
    yield x * 2.0  # BAD: yield


def yield_from(x):
    yield from (x, x)  # BAD: yield-from


async def async_def(x):  # BAD: async
    return x * x


def class_inside(x):
    class Box:  # BAD: classdef
        scale = 2.0

    return x * Box.scale


def nested_def(x):
    def square(t):  # BAD: nested-def
        return t * t

    return square(x)


def star_args(x, *rest):
    return x


def walrus(x):
    if (y := x * 2.0) > 1.0:  # BAD: walrus
        return y
    return x


def fstring_arithmetic(x):
    return x + f"{x}"  # BAD: fstring


def star_call(x):
    return np.hypot(*x)  # BAD: star-call


def star_assign(x):
    a, *rest = x, x, x  # BAD: star-assign
    return a


def del_stmt(x):
    y = x * 2.0
    del y  # BAD: del
    return x


def import_inside(x):
    import math as m  # BAD: import

    return m.sin(x)


def from_import_inside(x):
    from math import sin  # BAD: from-import

    return sin(x)


def raise_stmt(x):
    if x < 0.0:
        raise ValueError("negative")  # BAD: raise-traced
    return x


def assert_stmt(x):
    assert x > 0.0, "positive"  # BAD: assert-traced
    return x


def dict_traced_key(x):
    d = {x: 1.0}  # BAD: dict-traced-key
    return d[x]


def set_literal(x):
    s = {x, 2.0}  # BAD: set
    return x


def list_traced_index(x, n):
    xs = [x, 2.0 * x]
    return xs[n]  # BAD: list-traced-index


def iterate_number(x):
    total = 0.0
    for v in x:  # BAD: iterate-number
        total = total + v
    return total


def isinstance_traced(x):
    if isinstance(x, float):  # BAD: isinstance-traced
        return x * x
    return x


def long_generator(x):
    return sum(x * i for i in range(30_000))  # BAD: genexp-unroll


def _append_to(xs, v):
    xs.append(v)  # BAD: append-passed-list
    return v


def appends_in_helper(x):
    xs = [x]
    _append_to(xs, 2.0 * x)
    return xs[-1]


def indexing(x):
    y = x[0] * 2.0  # BAD: index
    return y


def slicing(x):
    y = x[1:]  # BAD: slice
    return y


def subscript_augassign(x):
    x[0][1] += 1.0  # BAD: subscript-augassign
    return x


def match_stmt(x):
    match x:  # BAD: match
        case 1:
            return 1.0
        case _:
            return x


def _make_flush_left_string():
    def flush_left_string(x):
        note = """
flush-left text inside an indented function"""
        y = x
        try:  # BAD: flush-left-string
            y = y / 2.0
        finally:
            pass
        return y

    return flush_left_string


flush_left_string = _make_flush_left_string()


# --- syntax refused while tracing (on the first call, or on .source) ----------------------------


def with_open(x):
    with open("log.txt") as log:  # BAD: with
        y = x * 2.0
    return y


def matmul(x):
    return x @ x  # BAD: matmul


def bit_and(x):
    return np.where((x > 0.0) & (x < 1.0), x, 0.0)  # BAD: bitand


def bit_or(x):
    return np.where((x < 0.0) | (x > 1.0), x, 0.0)  # BAD: bitor


def bit_xor(x):
    return x ^ 2  # BAD: xor


def left_shift(x):
    return x << 1  # BAD: lshift


def invert(x):
    return ~x  # BAD: invert


def is_comparison(x):
    if x is None:  # BAD: is
        return 0.0
    return x


def in_comparison(x):
    if x in (1.0, 2.0):  # BAD: in
        return 0.0
    return x


def for_else(x):
    y = x
    for _ in range(3):  # BAD: for-else
        y = y * x
    else:
        y = y + 1.0
    return y


def keyword_to_rule(x):
    return np.clip(x, min=0.0, max=1.0)  # BAD: rule-kwargs


# --- semantics: constructs that parse but cannot be differentiated -------------------------------


def range_start_traced(x, n):
    y = x
    for _ in range(1, n):  # BAD: range-start-traced
        y = y * x
    return y


def range_computed(x):
    m = x * 2.0
    y = x
    for _ in range(m):  # BAD: range-computed
        y = y * x
    return y


def recursive(x):
    if x < 1.0:
        return x
    return recursive(x / 2.0)  # BAD: recursion


def ping(x):
    return pong(x) * 2.0


def pong(x):
    return ping(x) + 1.0  # BAD: mutual-recursion


def set_attribute(x):
    x.attr = 1.0  # BAD: setattr
    return x


def augassign_attribute(x):
    x.count += 1.0  # BAD: augattr
    return x


def method_call(x):
    return x.sum()  # BAD: method-call


def attribute_read(x):
    return x.nbytes  # BAD: attribute


def unknown_numpy(x):
    return np.float_power(x, 3.0)  # BAD: np-float-power


def user_class(x):
    p = Point(x)  # BAD: user-class
    return x


def expression_statement(x):
    np.sin(x)  # BAD: expr-stmt
    return x


def print_assigned(x):
    shown = print(x)  # BAD: print-assign
    return x


def string_arithmetic(x):
    return x + "a"  # BAD: str-arith


def none_arithmetic(x):
    return x * None  # BAD: none-arith


def tuple_arithmetic(x):
    p = (x, x)
    return p * 2.0  # BAD: tuple-arith


def missing_return(x):
    if x > 0.0:  # BAD: missing-return
        return x


def no_return(x):
    y = x * 2.0  # BAD: no-return


def bare_return(x):
    return  # BAD: bare-return


def return_condition(x):
    return x > 0.0  # BAD: return-condition


def return_string(x):
    return "x"  # BAD: return-string


def nested_tuple(x):
    return (x, (x, x))  # BAD: nested-tuple


def tuple_output(x, y):
    return x * y, x + y  # BAD: tuple-output value-and-grad-tuple-output


def unpack_mismatch(x):
    a, b = x, x, x  # BAD: unpack-mismatch
    return a


def conditional_mismatch(x):
    y = (x, x) if x > 0.0 else x  # BAD: ifexp-mismatch
    return x


def branch_mismatch(x):
    if x > 0.0:  # BAD: branch-mismatch
        y = (x, x)
    else:
        y = x
    return x


def undefined_name(x):
    return x * undefined_thing  # BAD: undefined-name


def misspelled_numpy(x):
    return np.sinx(x)  # BAD: bad-module-attr




def rule_arity(x):
    return np.sin(x, x, x)  # BAD: rule-arity


def helper_with_try(t):
    try:  # BAD: helper-try
        t = t / 2.0
    finally:
        pass
    return t


def calls_helper_with_try(x):
    return helper_with_try(x) * 2.0


def calls_helper_badly(x):
    return good(x, x, x)  # BAD: helper-signature


def no_grad_with_target(x):
    with no_grad() as ctx:  # BAD: no-grad-as
        y = x * 2.0
    return y


# --- functions whose source symgrad cannot use --------------------------------------------------


_namespace: dict = {}
exec("def from_exec(x):\n    return x * x\n", _namespace)
from_exec = _namespace["from_exec"]

_lambda_namespace: dict = {}
exec("square = lambda x: x * x\n", _lambda_namespace)  # no source is kept for it
LAMBDA_FROM_EXEC = _lambda_namespace["square"]



# --- issue #12: decorators, methods, rule arguments, library functions ---------------------------


def doubled(fn):
    """A decorator whose wrapper doubles the output: symgrad cannot see what it does."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return 2.0 * fn(*args, **kwargs)

    return wrapper


@doubled  # BAD: decorated
def decorated(x):
    return x * x


class Model:
    """A user class whose method is differentiated directly."""

    def __init__(self, w):
        self.w = w

    def loss(self, x):  # BAD: unbound-method
        return self.w * x * x


MODEL = Model(2.0)


def abs_two_args(x):
    return abs(x, x)  # BAD: abs-arity


def clip_one_arg(x):
    return np.clip(x)  # BAD: clip-arity


def log_three_args(x):
    return math.log(x, 2.0, 3.0)  # BAD: log-arity


def where_one_arg(x):
    return np.where(x > 0.0)  # BAD: where-one-arg


def float_of_bad_string(x):
    return x * float("one")  # BAD: float-bad-string


def library_function(x):
    _rows, _cols = np.triu_indices(3)  # BAD: library-function
    return x

