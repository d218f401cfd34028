"""Complex arguments and values: gradients of real-valued functions of complex inputs.

The convention is JAX's and autograd's: for z = x + iy the gradient is df/dx - i df/dy
(PyTorch's `z.grad` is its conjugate). Every case is checked against the original function
run by NumPy (values), central finite differences in x and y, PyTorch (complex128,
conjugated) and JAX where installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad import SymgradError, TracingError, WrtError, grad, value_and_grad, vjp

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
Z3 = RNG.normal(size=3) + 1j * RNG.normal(size=3)
W32 = RNG.normal(size=(3, 2)) + 1j * RNG.normal(size=(3, 2))
X3 = RNG.normal(size=3)


def finite_difference_gradient(fn, args, i, h=1e-6):
    """df/dx - i df/dy at argument `i` (df/dx for a real one), by central differences on the
    original function: shares nothing with symgrad."""
    arg = args[i]
    complex_arg = np.iscomplexobj(arg)
    base = np.array(arg, dtype=complex if complex_arg else float)
    out = np.zeros(base.shape, dtype=complex if complex_arg else float)
    directions = (1.0, 1j) if complex_arg else (1.0,)
    for index in np.ndindex(base.shape):
        for direction in directions:
            values = []
            for sign in (1.0, -1.0):
                moved = base.copy()
                moved[index] += sign * h * direction
                call = list(args)
                call[i] = moved if np.ndim(arg) else moved.item()
                values.append(float(fn(*call)))
            slope = (values[0] - values[1]) / (2 * h)
            out[index] += slope if direction == 1.0 else -1j * slope
    return out if np.ndim(arg) else out.item()


def _rotate(z, n):
    s = 0.0  # a real start that becomes complex: the loop unrolls (it says why in the code)
    for _ in range(n):
        s = s * (0.98 + 0.02j) + z
    return (s.real**2 + s.imag**2).sum()


# (id, function, arguments, torch twin): the twin computes the same with torch's functions.
CASES = [
    ("abs2", lambda z: np.abs(z) ** 2, (1.0 + 2.0j,), lambda z: z.abs() ** 2),
    ("real-square", lambda z: np.real(z * z), (1.0 + 2.0j,), lambda z: (z * z).real),
    ("imag-attribute", lambda z: (z * z).imag + z.real, (0.3 - 1.2j,), lambda z: (z * z).imag + z.real),
    ("conj-product", lambda z: np.real(z * np.conj(z) + z.conjugate() * 2.0j), (0.7 + 0.4j,), None),
    (
        "conjugate-array",
        lambda z, w: np.sum(np.real(np.conjugate(z) @ w) ** 2),
        (Z3, W32),
        lambda z, w: ((torch.conj(z) @ w).real ** 2).sum(),
    ),
    (
        "mixed-real",
        lambda z, x: np.real(np.exp(z) * x) + np.imag(np.sin(z) / (z + 2.0)) + np.angle(z) * x,
        (1.0 + 2.0j, 0.5),
        lambda z, x: (torch.exp(z) * x).real + (torch.sin(z) / (z + 2.0)).imag + torch.angle(z) * x,
    ),
    (
        "elementwise",
        lambda z: np.real(
            np.log(z) + np.sqrt(z) + np.cos(z) + np.tan(z) + np.sinh(z) + np.cosh(z) + np.tanh(z)
        ),
        (0.8 + 0.3j,),
        lambda z: (
            (
                torch.log(z)
                + torch.sqrt(z)
                + torch.cos(z)
                + torch.tan(z)
                + torch.sinh(z)
                + torch.cosh(z)
                + torch.tanh(z)
            ).real
        ),
    ),
    (
        "powers",
        lambda z, x: np.real(z**2 + z**3 + 1.0 / z + z**-2 + z**0.5 + z**x + z ** (0.5 + 0.5j)),
        (0.9 + 0.6j, 1.7),
        lambda z, x: (z**2 + z**3 + 1.0 / z + z**-2 + z**0.5 + z**x + z ** (0.5 + 0.5j)).real,
    ),
    (
        "constant-i",
        lambda x: np.abs(np.exp(1j * x) + 2.0 * x),
        (0.4,),
        lambda x: (torch.exp(1j * x) + 2.0 * x).abs(),
    ),
    ("array-abs2", lambda z: np.sum(np.abs(z) ** 2), (Z3,), lambda z: (z.abs() ** 2).sum()),
    (
        "matmul",
        lambda z, w: np.sum(np.abs(z @ w) ** 2) + np.real(np.sum(z)),
        (Z3, W32),
        lambda z, w: ((z @ w).abs() ** 2).sum() + z.sum().real,
    ),
    (
        "shapes",
        lambda z, x: (
            np.real(np.sum(np.cumsum(z)[::-1] * x) + np.mean(z.reshape(3, 1).T) + z[1] * z[2])
            + np.imag(np.sum(np.stack([z, x])))
        ),
        (Z3, X3),
        lambda z, x: (
            (torch.cumsum(z, 0).flip(0) * x).sum().real
            + z.reshape(3, 1).T.mean().real
            + (z[1] * z[2]).real
            + torch.stack([z, x.to(z.dtype)]).sum().imag
        ),
    ),
    (
        "outer",
        lambda z, x: np.real(np.trace(np.outer(z, x) @ np.outer(x, z))),
        (Z3, X3),
        lambda z, x: torch.trace(torch.outer(z, x.to(z.dtype)) @ torch.outer(x.to(z.dtype), z)).real,
    ),
    ("complex-builtin", lambda x, y: np.abs(complex(x, y)) ** 3, (0.6, -1.1), None),
    ("loop-unrolled", lambda z: _rotate(z, 70), (Z3,), lambda z: _rotate(z, 70)),
    (
        "angle-array",
        lambda z: np.sum(np.angle(z) * np.abs(z)),
        (Z3,),
        lambda z: (torch.angle(z) * z.abs()).sum(),
    ),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name,fn,args,twin", CASES, ids=_ids(CASES))
def test_value_and_gradient_match_numpy_and_finite_differences(name, fn, args, twin):
    positions = tuple(range(len(args)))
    value, grads = value_and_grad(fn, wrt=positions)(*args)
    assert value == pytest.approx(float(fn(*args)), rel=1e-12, abs=1e-12)
    for i, got in enumerate(grads):
        expected = finite_difference_gradient(fn, args, i)
        assert np.shape(got) == np.shape(args[i])
        assert np.iscomplexobj(got) == np.iscomplexobj(args[i]), f"{name}: dtype of the gradient of {i}"
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=f"{name}, argument {i}")


@pytest.mark.parametrize(
    "name,fn,args,twin",
    [c for c in CASES if c[3] is not None],
    ids=_ids(c for c in CASES if c[3] is not None),
)
def test_gradient_is_the_conjugate_of_torchs(name, fn, args, twin):
    leaves = [
        torch.tensor(a, dtype=torch.complex128 if np.iscomplexobj(a) else torch.float64, requires_grad=True)
        for a in args
    ]
    twin(*leaves).backward()
    grads = grad(fn, wrt=tuple(range(len(args))))(*args)
    for got, leaf in zip(grads, leaves):
        np.testing.assert_allclose(
            got, np.conj(leaf.grad.resolve_conj().numpy()), rtol=1e-10, atol=1e-12, err_msg=name
        )


def test_gradient_is_jaxs():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def f(z, w):
        return jnp.sum(jnp.abs(z @ w) ** 2) + jnp.real(jnp.sum(jnp.exp(z)))

    def mine(z, w):
        return np.sum(np.abs(z @ w) ** 2) + np.real(np.sum(np.exp(z)))

    expected = jax.grad(f, argnums=(0, 1))(Z3, W32)
    for got, want in zip(grad(mine, wrt=(0, 1))(Z3, W32), expected):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10)


def test_a_python_complex_argument_gives_a_python_complex_gradient():
    g = grad(lambda z: np.abs(z) ** 2)(1.0 + 2.0j)
    assert type(g) is complex and g == pytest.approx(2.0 - 4.0j)


def test_vjp_of_a_real_output():
    def f(z):
        return np.abs(z) ** 2

    value, pullback = vjp(f)(Z3)
    np.testing.assert_allclose(value, np.abs(Z3) ** 2)
    cotangent = np.array([1.0, 2.0, 3.0])
    expected = finite_difference_gradient(lambda z: float(np.sum(cotangent * f(z))), (Z3,), 0)
    np.testing.assert_allclose(pullback(cotangent), expected, rtol=1e-6)


def test_generated_code_reads_the_parts_and_combines_the_gradient():
    g = grad(lambda z: np.abs(z) ** 2)
    g(1.0 + 2.0j)
    source = g.variant({}, {"z": ()}, frozenset({"z"})).kernel.array_source
    assert "z_re = numpy.real(z)" in source and "z_im = numpy.imag(z)" in source
    assert "1j*" in source  # dfdz = dfdz_re - 1j*dfdz_im


def test_real_arguments_still_get_real_programs():
    f = grad(lambda x: np.abs(x) ** 2)
    assert type(f(1.5)) is float
    assert f(np.array([1.0, -2.0])).dtype == np.float64


HOLOMORPHIC = [
    ("sin", lambda z: np.sin(z), 0.3 + 0.7j),
    ("polynomial", lambda z: z * z * z + 2.0j * z - 1.0, Z3),
    ("exp-log", lambda z: np.exp(z) * np.log(z + 3.0), Z3),
    ("matmul", lambda z, w: z @ w, (Z3, W32)),
    ("conj", lambda z: np.conj(z) * 2.0 + np.abs(z), Z3),  # not holomorphic: both parts matter
]


@pytest.mark.parametrize("name,fn,z", HOLOMORPHIC, ids=[h[0] for h in HOLOMORPHIC])
def test_vjp_of_a_complex_output_is_jaxs(name, fn, z):
    """The pullback of a complex output at cotangent c is the gradient of Re(sum(c * f)),
    as jax.vjp and autograd's make_vjp give it (c * f'(z) for a holomorphic f)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    twins = {
        "sin": lambda z: jnp.sin(z),
        "polynomial": lambda z: z * z * z + 2.0j * z - 1.0,
        "exp-log": lambda z: jnp.exp(z) * jnp.log(z + 3.0),
        "matmul": lambda z, w: z @ w,
        "conj": lambda z: jnp.conj(z) * 2.0 + jnp.abs(z),
    }
    args = z if isinstance(z, tuple) else (z,)
    value, pullback = vjp(fn, wrt=tuple(range(len(args))))(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-13)
    _, jax_pullback = jax.vjp(twins[name], *map(jnp.asarray, args))
    for cotangent in (np.ones_like(value), 1j * np.ones_like(value), RNG.normal(size=np.shape(value)) + 0.5j):
        wanted = jax_pullback(jnp.asarray(cotangent, dtype=complex))
        for got, want in zip(pullback(cotangent), wanted):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_complex_array_from_outside_is_refused_with_a_hint_that_works():
    with pytest.raises(SymgradError) as info:
        vjp(_reads_outside)(Z3)
    assert "complex" in str(info.value) and "test_complex.py" in str(info.value)
    assert "def _reads_outside(..., W32)" in info.value.hint
    value, _ = vjp(_takes_it)(Z3, W32)  # as the hint says
    np.testing.assert_allclose(value, Z3 @ W32)


def _reads_outside(z):
    return z @ W32


def _takes_it(z, W32):
    return z @ W32


def test_jvp_of_a_real_argument_with_a_complex_output():
    def f(x):
        return np.exp(1j * x) * x

    value, tangent = symgrad.jvp(f)((0.5,), (1.0,))
    assert value == pytest.approx(f(0.5)) and isinstance(value, complex)
    assert tangent == pytest.approx(np.exp(0.5j) * (1j * 0.5 + 1.0))


def test_a_complex_result_is_refused_with_a_hint_that_works():
    def f(z):
        return z * z

    with pytest.raises(TracingError) as info:
        grad(f)(1.0 + 2.0j)
    assert "complex value" in str(info.value) and "test_complex.py" in str(info.value)
    assert "np.real" in info.value.hint

    def fixed(z):
        return np.real(z * z)  # as the hint says

    assert grad(fixed)(1.0 + 2.0j) == pytest.approx(2.0 + 4.0j)


def test_an_unsupported_function_of_a_complex_value_names_the_users_call():
    def f(z):
        return np.real(np.sinc(z))

    with pytest.raises(SymgradError) as info:
        grad(f)(0.5 + 0.5j)
    message = str(info.value)
    assert "`np.sinc` of a complex value" in message and "test_complex.py" in message
    assert "np.real(z), np.imag(z)" in info.value.hint

    def fixed(z):  # the hint: compute with the parts (sin(pi z) / (pi z) here)
        a, b = np.real(z), np.imag(z)
        top = complex(np.sin(np.pi * a) * np.cosh(np.pi * b), np.cos(np.pi * a) * np.sinh(np.pi * b))
        return np.real(top / (np.pi * z))

    np.testing.assert_allclose(
        grad(fixed)(0.5 + 0.5j), finite_difference_gradient(f, (0.5 + 0.5j,), 0), rtol=1e-6
    )


def test_hessian_of_complex_arguments_is_refused_with_a_hint_that_works():
    def f(z):
        return np.abs(z) ** 4

    with pytest.raises(WrtError) as info:
        symgrad.hessian(f)(1.0 + 2.0j)
    assert "x + 1j * y" in info.value.hint

    def g(x, y):  # the hint: the real and imaginary parts as two float arguments
        return f(x + 1j * y)

    # |z|^4 = (x^2 + y^2)^2: d2/dx2 = 12x^2 + 4y^2, d2/dy2 = 4x^2 + 12y^2
    assert float(np.squeeze(symgrad.hessian(g)(1.0, 2.0))) == pytest.approx(28.0)
    assert float(np.squeeze(symgrad.hessian(g, wrt="y")(1.0, 2.0))) == pytest.approx(52.0)


ELEMENTWISE = ["arcsinh", "arccosh", "arctanh", "arcsin", "arccos", "arctan", "log1p", "expm1", "exp2"]
ELEMENTWISE += ["log2", "log10", "sqrt", "log", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh"]
POINTS = 2.0 * RNG.normal(size=40) + 2.0j * RNG.normal(size=40)  # every quadrant, off the cuts


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_functions_of_complex_values_take_numpys_branches(name):
    """Each element's real and imaginary parts equal NumPy's complex function (inverse
    functions on NumPy's principal branches), and the gradient finite differences."""
    fn = getattr(np, name)
    weights = RNG.normal(size=6)

    def parts(z):
        return np.stack([np.real(fn(z)), np.imag(fn(z))])

    def score(z):
        w = fn(z)
        return np.sum(weights * np.real(w) + np.imag(w) ** 2)

    value, _ = vjp(parts)(POINTS)
    np.testing.assert_allclose(value, np.stack([fn(POINTS).real, fn(POINTS).imag]), rtol=1e-12, atol=1e-14)
    got = grad(score)(POINTS[:6])
    expected = finite_difference_gradient(score, (POINTS[:6],), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_vjp_of_a_complex_output_sums_over_broadcast_axes():
    """A complex (2,) and a real (2, 1) argument give a (2, 2) output; each gradient sums the
    cotangent over the axes its argument was broadcast along. (The value run picked the real
    program's cotangent shape, (), before: `cannot reshape array of size 1 into shape (2,)`.)"""

    def add(x, y):
        return x * y + 1j * y

    x, y = np.array([1.0 + 2.0j, 3.0j]), np.array([[1.0], [2.0]])
    value, pullback = vjp(add, wrt=(0, 1))(x, y)
    np.testing.assert_allclose(value, add(x, y))
    cotangent = np.array([[1.0, 2.0j], [0.5, -1.0 + 1.0j]])
    gx, gy = pullback(cotangent)
    # the gradient of Re(sum(c * f)): d/dx = sum over rows of c * y, d/dy = Re(sum_j c (x + 1j))
    np.testing.assert_allclose(gx, np.sum(cotangent * y, axis=0))
    np.testing.assert_allclose(gy, np.real(np.sum(cotangent * (x + 1j), axis=1, keepdims=True)))
