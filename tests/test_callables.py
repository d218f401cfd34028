"""Any callable users pass: lambdas (files and notebook cells), NumPy/math/SciPy functions, partials.

Oracles: the callable itself run by Python/NumPy, central finite differences of it, and PyTorch
in float64 for the NumPy functions; never symgrad's own output."""

import functools
import importlib
import linecache
import math
import sys

import numpy as np
import pytest

import symgrad
from symgrad import grad, hessian, jacobian, jvp, value_and_grad, vjp

square = lambda x: x * np.sin(x)  # noqa: E731 - a lambda on purpose: the form users write
first, second = (lambda x: x**2), (lambda x: x**3)  # two lambdas on one line


def scaled(a):
    return lambda x: a * np.exp(x)


def product(x, y, a=1.0, *, b=0.5):
    return a * x * y + b * x


def fd(fn, args, i, h=1e-6):
    """d sum(fn(*args)) / d args[i], one central difference per element."""
    base = np.array(args[i], dtype=np.float64)
    out = np.zeros(base.shape)
    for index in np.ndindex(base.shape):
        total = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * h * max(1.0, abs(base[index]))
            value = moved if moved.shape else float(moved)
            total.append(float(np.sum(fn(*args[:i], value, *args[i + 1 :]))))
        out[index] = (total[0] - total[1]) / (2 * h * max(1.0, abs(base[index])))
    return out if base.shape else float(out)


# --- lambdas -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [square, first, second, scaled(3.0)], ids=["named", "first", "second", "closure"]
)
def test_lambda_gradient_matches_finite_differences(fn):
    for x in (-1.3, 0.4, 2.0):
        value, dx = value_and_grad(fn)(x)
        assert value == pytest.approx(fn(x))
        assert dx == pytest.approx(fd(fn, (x,), 0), rel=1e-7)


def test_lambda_picked_by_its_code_among_lambdas_on_one_line():
    assert grad(first)(2.0) == pytest.approx(4.0)
    assert grad(second)(2.0) == pytest.approx(12.0)


def test_lambda_source_reads_as_a_def_named_after_its_variable():
    source = grad(square).source
    assert source.startswith("def grad_square(x):")
    assert "square = lambda x: x * np.sin(x)" in source  # the user's line, as a comment


def test_inline_lambda_with_wrt_second_order_and_array_transforms():
    dx, dy = grad(lambda x, y: x * y + np.sin(x * y), wrt=(0, 1))(2.0, 3.0)
    assert (dx, dy) == pytest.approx((3.0 + 3.0 * math.cos(6.0), 2.0 + 2.0 * math.cos(6.0)))
    assert grad(grad(lambda x: x**4))(1.5) == pytest.approx(12 * 1.5**2)
    x = np.array([0.2, -0.7, 1.1])
    fn = lambda v: np.sum(np.tanh(v) * v)  # noqa: E731
    np.testing.assert_allclose(grad(fn)(x), fd(fn, (x,), 0), rtol=1e-7)
    elementwise = lambda v: v * np.exp(v)  # noqa: E731
    np.testing.assert_allclose(jacobian(elementwise)(x), np.diag((1 + x) * np.exp(x)), rtol=1e-12)
    value, tangent = jvp(elementwise)((x,), (np.ones(3),))
    np.testing.assert_allclose(value, elementwise(x))
    np.testing.assert_allclose(tangent, (1 + x) * np.exp(x), rtol=1e-12)
    value, pullback = vjp(elementwise)(x)
    np.testing.assert_allclose(pullback(np.ones(3)), (1 + x) * np.exp(x), rtol=1e-12)


def test_lambda_hessian_matches_finite_differences_of_the_gradient():
    fn = lambda v: np.sum(np.tanh(v) * v)  # noqa: E731
    x = np.array([0.2, -0.7, 1.1])
    got = hessian(fn)(x)
    for i in range(3):
        column = fd(lambda v, i=i: grad(fn)(v)[i], (x,), 0)
        np.testing.assert_allclose(got[i], column, rtol=1e-6, atol=1e-9)


def test_lambda_in_a_notebook_cell_is_read_from_linecache():
    """IPython keeps each cell's text in linecache under a name of its own (mtime None)."""
    cell = "import numpy as np\ncube = lambda x: np.cos(x) * x ** 3\n"
    filename = "<ipython-input-7-symgradtest>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(cell, filename, "exec"), namespace)
    cube = namespace["cube"]
    assert grad(cube)(0.8) == pytest.approx(fd(cube, (0.8,), 0), rel=1e-7)


def test_lambda_from_exec_is_refused_saying_why_and_what_to_do():
    namespace: dict = {}
    exec("cube = lambda x: x ** 3\n", namespace)
    with pytest.raises(symgrad.SourceUnavailableError) as info:
        grad(namespace["cube"])
    assert "exec" in str(info.value) and "notebook cell" in info.value.hint


def test_lambda_whose_file_changed_is_refused(tmp_path):
    (tmp_path / "lambda_module.py").write_text("f = lambda x: x * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("lambda_module")
    finally:
        sys.path.remove(str(tmp_path))
    (tmp_path / "lambda_module.py").write_text("f = lambda x: x * x * x\n")
    linecache.checkcache()
    with pytest.raises(symgrad.SourceChangedError) as info:
        grad(module.f)
    assert "lambda_module.py:1:" in str(info.value) and "reload" in info.value.hint


# --- NumPy, math and SciPy functions passed directly --------------------------------------------

UNARY = [
    rule
    for rule in symgrad.RULES
    if rule.names[0].startswith("numpy.")
    and isinstance(getattr(np, rule.names[0][6:], None), np.ufunc)
    and getattr(np, rule.names[0][6:]).nin == 1
]
BINARY = [
    rule
    for rule in symgrad.RULES
    if rule.names[0].startswith("numpy.")
    and isinstance(getattr(np, rule.names[0][6:], None), np.ufunc)
    and getattr(np, rule.names[0][6:]).nin == 2
]


def _points(rule, n):
    low, high = rule.domain
    return np.linspace(low + 0.13 * (high - low), high - 0.11 * (high - low), n)


def _smooth_at(fn, x):
    """Away from kinks: the one-sided slopes agree (floor, sign, abs at 0...)."""
    h = 1e-4
    left, right = (fn(x) - fn(x - h)) / h, (fn(x + h) - fn(x)) / h
    return np.all(np.abs(left - right) < 1e-2 * (1 + np.abs(left)))


@pytest.mark.parametrize("rule", UNARY, ids=[r.names[0] for r in UNARY])
def test_numpy_ufunc_passed_directly(rule):
    ufunc = getattr(np, rule.names[0][6:])
    x = _points(rule, 5)
    x = x[[_smooth_at(ufunc, v) for v in x]]
    np.testing.assert_allclose(grad(ufunc)(x), fd(ufunc, (x,), 0), rtol=1e-6, atol=1e-8)
    assert grad(ufunc)(float(x[0])) == pytest.approx(float(fd(ufunc, (float(x[0]),), 0)), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("rule", BINARY, ids=[r.names[0] for r in BINARY])
def test_numpy_binary_ufunc_passed_directly(rule):
    ufunc = getattr(np, rule.names[0][6:])
    x, y = _points(rule, 4), _points(rule, 4)[::-1] * 0.9
    keep = [
        _smooth_at(lambda v, b=b: ufunc(v, b), a) and _smooth_at(lambda v, a=a: ufunc(a, v), b)
        for a, b in zip(x, y)
    ]
    x, y = x[keep], y[keep]
    dx, dy = grad(ufunc, wrt=(0, 1))(x, y)
    np.testing.assert_allclose(dx, fd(ufunc, (x, y), 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dy, fd(ufunc, (x, y), 1), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "fn", [math.exp, math.sin, math.log1p, math.atan, math.sqrt], ids=lambda f: f.__name__
)
def test_math_function_passed_directly(fn):
    assert grad(fn)(0.7) == pytest.approx(fd(fn, (0.7,), 0), rel=1e-7)


def test_scipy_special_function_passed_directly():
    special = pytest.importorskip("scipy.special")
    x = np.array([-1.5, 0.0, 2.0])
    np.testing.assert_allclose(grad(special.expit)(x), fd(special.expit, (x,), 0), rtol=1e-7)


def test_numpy_functions_against_torch():
    torch = pytest.importorskip("torch")
    x = np.array([0.3, -1.2, 2.5])
    for ours, theirs in (
        (np.sin, torch.sin),
        (np.tanh, torch.tanh),
        (np.exp, torch.exp),
        (np.arctan, torch.atan),
    ):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        theirs(t).sum().backward()
        np.testing.assert_allclose(grad(ours)(x), t.grad.numpy(), rtol=1e-13)


def test_array_functions_passed_directly():
    x = np.array([1.0, -2.0, 3.5])
    np.testing.assert_allclose(grad(np.sum)(x), np.ones(3))
    np.testing.assert_allclose(grad(np.mean)(x), np.full(3, 1 / 3))
    np.testing.assert_allclose(grad(np.prod)(x), fd(np.prod, (x,), 0), rtol=1e-7)


def test_wrapper_source_is_readable_and_shown_by_inspect():
    import inspect

    assert (
        inspect.getsource(symgrad.callables.as_function(np.tanh))
        == "def tanh(x):\n    return numpy.tanh(x)\n"
    )
    assert grad(np.tanh).source.startswith("def grad_tanh(x):")
    assert grad(np.sin) is not None and symgrad.callables.as_function(
        np.sin
    ) is symgrad.callables.as_function(np.sin)


def test_callable_without_a_rule_is_refused_at_the_callers_line():
    with pytest.raises(symgrad.UnknownCalleeError) as info:
        grad(np.linalg.eig)  # the line the error must name
    err = info.value
    assert err.filename == __file__ and "grad(np.linalg.eig)" in (err.source_line or "")
    assert "numpy.linalg.eig" in str(err) and "symgrad.supported()" in err.hint


# --- functools.partial ---------------------------------------------------------------------------


def test_partial_with_bound_keyword_and_positional_values():
    bound_keyword = functools.partial(product, a=3.0)
    dx, dy = grad(bound_keyword, wrt=(0, 1))(2.0, 5.0)
    assert (dx, dy) == pytest.approx(
        (fd(bound_keyword, (2.0, 5.0), 0), fd(bound_keyword, (2.0, 5.0), 1)), rel=1e-7
    )
    bound_first = functools.partial(product, 2.0)
    assert grad(bound_first)(5.0) == pytest.approx(fd(bound_first, (5.0,), 0), rel=1e-7)
    assert grad(bound_first, wrt="a")(5.0, 4.0) == pytest.approx(10.0)


def test_partial_keeps_defaults_and_keyword_only_parameters():
    fn = functools.partial(product, y=2.0)
    value, dx = value_and_grad(fn)(1.5, b=4.0)
    assert value == pytest.approx(fn(1.5, b=4.0))
    assert dx == pytest.approx(fd(lambda x: fn(x, b=4.0), (1.5,), 0), rel=1e-7)


def test_partial_of_a_numpy_function_and_of_a_lambda():
    power = functools.partial(np.power, 2.0)
    assert grad(power)(3.0) == pytest.approx(math.log(2.0) * 8.0)
    shifted = functools.partial(lambda x, c: (x - c) ** 2, c=1.0)
    assert grad(shifted)(4.0) == pytest.approx(6.0)


# --- operators, array functions' options, lambdas made by lambdas --------------------------------


def test_operator_module_functions():
    import operator

    assert grad(operator.mul, wrt=(0, 1))(2.0, 3.0) == pytest.approx((3.0, 2.0))
    dx, dy = grad(operator.pow, wrt=(0, 1))(2.0, 3.0)
    assert (dx, dy) == pytest.approx(
        (fd(operator.pow, (2.0, 3.0), 0), fd(operator.pow, (2.0, 3.0), 1)), rel=1e-7
    )
    x = np.array([0.5, -1.5])
    np.testing.assert_allclose(grad(operator.neg)(x), -np.ones(2))
    np.testing.assert_allclose(
        grad(operator.truediv, wrt=1)(1.0, x), fd(operator.truediv, (1.0, x), 1), rtol=1e-7
    )


@pytest.mark.parametrize("fn", [np.sum, np.mean, np.max, np.min, np.prod], ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_array_function_passed_directly_takes_its_options(fn, axis):
    x = np.array([[1.0, -2.0, 3.5], [0.5, 4.0, -1.0]])
    for keepdims in (False, True):
        got = grad(fn)(x, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(
            got, fd(lambda v: fn(v, axis=axis, keepdims=keepdims), (x,), 0), rtol=1e-6, atol=1e-9
        )


def test_lambda_made_by_a_lambda():
    make = lambda y: lambda x: np.power(x, y)  # noqa: E731
    assert grad(make(2.5))(1.5) == pytest.approx(2.5 * 1.5**1.5)
    assert grad(make(0.0))(0.0) == 0.0


# --- methods: bound, static, class, callable objects ---------------------------------------------


class Model:
    K = 2.0

    def __init__(self, w, scale):
        self.w = w
        self.scale = scale

    def predict(self, x):
        return np.tanh(self.w @ x)

    def loss(self, x):
        return self.scale * np.sum(self.predict(x) ** 2)

    @staticmethod
    def square(x):
        return x * x

    @classmethod
    def cube(cls, x):
        return cls.K * x**3


class Quadratic:
    def __init__(self, a):
        self.a = a

    def __call__(self, x):
        return self.a * x**2


def test_bound_method_reads_its_object_at_every_call():
    model = Model(np.array([[1.0, 2.0], [0.5, -1.0]]), 1.5)
    x = np.array([0.3, -0.2])
    g = grad(model.loss)
    np.testing.assert_allclose(g(x), fd(model.loss, (x,), 0), rtol=1e-7)
    model.w[0, 0] = 3.0  # an array of `self`, written into
    np.testing.assert_allclose(g(x), fd(model.loss, (x,), 0), rtol=1e-7)
    model.scale = 2.0  # a number of `self`, changed: traced again
    np.testing.assert_allclose(g(x), fd(model.loss, (x,), 0), rtol=1e-7)
    model.w = np.ones((3, 2))  # another shape
    np.testing.assert_allclose(g(x), fd(model.loss, (x,), 0), rtol=1e-7)
    assert "def grad_loss(x, self_w):" in g.source


def test_bound_method_against_torch():
    torch = pytest.importorskip("torch")
    model = Model(np.array([[1.0, 2.0], [0.5, -1.0]]), 1.5)
    x = np.array([0.3, -0.2])
    t = torch.tensor(x, requires_grad=True)
    (1.5 * torch.sum(torch.tanh(torch.tensor(model.w) @ t) ** 2)).backward()
    np.testing.assert_allclose(grad(model.loss)(x), t.grad.numpy(), rtol=1e-13)


def test_static_class_methods_and_callable_objects():
    assert grad(Model.square)(3.0) == pytest.approx(6.0)
    assert grad(Model.cube)(1.5) == pytest.approx(3 * 2.0 * 1.5**2)
    quadratic = Quadratic(3.0)
    assert grad(quadratic)(2.0) == pytest.approx(12.0)
    quadratic.a = 5.0
    assert grad(quadratic)(2.0) == pytest.approx(20.0)
    assert hessian(Model(np.eye(2), 1.0).loss)(np.array([0.1, 0.2])).shape == (2, 2)


def test_a_method_read_from_its_class_is_still_refused():
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        grad(Model.loss)
    assert "self" in str(info.value) and "grad(" in info.value.hint


def checked_square(x, n):
    assert n > 0, "n must be positive"
    return n * x * x


def test_a_function_with_an_assert_in_a_pytest_module_is_not_taken_for_edited():
    """pytest rewrites the asserts of test modules: the code that runs is not the file's text
    compiled plainly, and the edited-source check must compile it the same way."""
    assert "@pytest_ar" in globals()  # this module was rewritten by pytest
    assert grad(checked_square, static=("n",))(1.5, 2) == pytest.approx(6.0)


def test_library_functions_take_numpys_required_settings():
    # the wrapper takes the parameters of symgrad's handler of the function: np.repeat's
    # `repeats` and np.tensordot's second array (they were dropped: grad(np.repeat)(x, 2) failed)
    x = np.array([1.0, -2.0, 0.5])
    expected = np.repeat(np.eye(3), 2, axis=0)  # d repeat(x, 2)_i / d x_j
    np.testing.assert_array_equal(jacobian(np.repeat)(x, 2), expected)
    a, b = np.arange(6.0).reshape(2, 3), np.array([0.5, -1.0, 2.0])
    ga, gb = grad(lambda_free_tensordot, wrt=("a", "b"))(a, b)
    np.testing.assert_allclose(ga, np.tile(b, (2, 1)))
    np.testing.assert_allclose(gb, a.sum(axis=0))
    np.testing.assert_allclose(jacobian(np.tensordot, wrt="b")(a, b, axes=([1], [0])), a)


def lambda_free_tensordot(a, b):
    return np.sum(np.tensordot(a, b, axes=([1], [0])))


def test_a_wrt_position_counts_the_parameters_as_declared():
    # `def einsum(subscripts, *operands, optimize=False)`: position 1 is the operands
    x, y = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 3.0])
    gx, gy = jacobian(np.einsum, wrt=1)("ij,j->i", x, y)
    np.testing.assert_array_equal(gy, x)
    np.testing.assert_array_equal(gx, np.stack([np.outer([1.0, 0.0], y), np.outer([0.0, 1.0], y)]))


def test_a_lambda_with_static_parameters_compiles_its_dispatcher():
    """The generated `__call__` of a transform with static parameters is named after the
    function: a lambda's `<lambda>` gave `def grad_<lambda>(...)`, a SyntaxError."""
    g = grad(lambda x, c: x * c * x, static="c")
    assert g(1.5, c=2.0) == pytest.approx(6.0)
    assert g(1.5, c=3.0) == pytest.approx(9.0)  # another variant, through the dispatcher
