// Python bindings of the native CPU core. The state arrives as a dict of NumPy views of the
// BatchState's CPU tensors (zero copy, written in place), bfloat16 history as int16 views.
// Every array is checked for dtype, shape, C order and writability, so no silent copy can
// swallow a write.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "accept.h"
#include "batch.h"
#include "denormals.h"
#include "direction.h"
#include "propose.h"
#include "trial.h"

namespace py = pybind11;
namespace ifk = intriguing_fast;

namespace {

template <typename E>
E* data_of(const py::array& a, const std::string& name, const std::vector<int64_t>& shape) {
  if (!a.dtype().is(py::dtype::of<E>()))
    throw std::invalid_argument(name + ": expected dtype " + std::string(py::str(py::dtype::of<E>())) + ", got " +
                                std::string(py::str(a.dtype())));
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t k = 0; same && k < shape.size(); ++k) same = a.shape(k) == shape[k];
  if (!same) {
    std::string want, got;
    for (int64_t s : shape) want += std::to_string(s) + ",";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) got += std::to_string(a.shape(k)) + ",";
    throw std::invalid_argument(name + ": expected shape (" + want + ") from the batch's (rows, m, n), got (" + got + ")");
  }
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(name + ": must be C-contiguous");
  if (!a.writeable()) throw std::invalid_argument(name + ": must be writeable");
  return static_cast<E*>(const_cast<void*>(a.data()));
}

template <typename E>
E* field(const py::dict& st, const char* key, const std::vector<int64_t>& shape) {
  return data_of<E>(st[key].cast<py::array>(), std::string("state.") + key, shape);
}

template <typename T, typename H>
ifk::Batch<T, H> batch_of(const py::dict& st) {
  using Stored = std::conditional_t<std::is_same_v<H, ifk::Bf16>, int16_t, T>;  // NumPy has no bfloat16
  const py::array S = st["S"].cast<py::array>();
  if (S.ndim() != 3) throw std::invalid_argument("state.S: expected shape [rows, m, n]");
  const int64_t R = S.shape(0), m = S.shape(1), n = S.shape(2);
  const std::vector<int64_t> vec{R, n}, sc{R}, hist{R, m, n};
  ifk::Batch<T, H> b{};
  b.rows = R, b.n = n, b.m = m;
  // Bounds: one row per problem, or a single row that every problem shares.
  const int64_t bound_rows = st["lower"].cast<py::array>().shape(0) == 1 ? 1 : R;
  b.bound_stride = bound_rows == 1 ? 0 : n;
  b.lower = field<T>(st, "lower", {bound_rows, n}), b.upper = field<T>(st, "upper", {bound_rows, n});
  b.x = field<T>(st, "x", vec), b.g = field<T>(st, "g", vec);
  b.d = field<T>(st, "d", vec), b.x_trial = field<T>(st, "x_trial", vec);
  b.f = field<T>(st, "f", sc), b.gd = field<T>(st, "gd", sc), b.t = field<T>(st, "t", sc);
  b.slope = field<T>(st, "slope", sc), b.gamma = field<T>(st, "gamma", sc), b.pg_norm = field<T>(st, "pg_norm", sc);
  b.S = reinterpret_cast<H*>(field<Stored>(st, "S", hist));
  b.Y = reinterpret_cast<H*>(field<Stored>(st, "Y", hist));
  b.hist_len = field<int64_t>(st, "hist_len", sc), b.head = field<int64_t>(st, "head", sc);
  b.ls_iter = field<int64_t>(st, "ls_iter", sc), b.status = field<int64_t>(st, "status", sc);
  b.nit = field<int64_t>(st, "nit", sc), b.nfev = field<int64_t>(st, "nfev", sc);
  b.need_dir = field<bool>(st, "need_dir", sc), b.box_first = field<bool>(st, "box_first", sc);
  return b;
}

// Calls body(batch) with the Batch type matching the state's dtypes.
template <typename F>
void dispatch(const py::dict& st, F&& body) {
  const py::array x = st["x"].cast<py::array>(), S = st["S"].cast<py::array>();
  const bool f64 = x.dtype().is(py::dtype::of<double>());
  if (!f64 && !x.dtype().is(py::dtype::of<float>()))
    throw std::invalid_argument("state.x: expected dtype float32 or float64, got " + std::string(py::str(x.dtype())));
  const bool bf16 = S.dtype().is(py::dtype::of<int16_t>());
  if (f64) {
    if (bf16) body(batch_of<double, ifk::Bf16>(st)); else body(batch_of<double, double>(st));
  } else {
    if (bf16) body(batch_of<float, ifk::Bf16>(st)); else body(batch_of<float, float>(st));
  }
}

// The row list of a step: distinct problem indices in [0, rows), so no two threads share a row.
const int64_t* rows_of(const py::array& rows, int64_t R) {
  if (rows.ndim() != 1) throw std::invalid_argument("rows: expected a 1-D array of problem indices");
  const int64_t k = rows.shape(0);
  const int64_t* r = data_of<int64_t>(rows, "rows", {k});
  std::vector<bool> seen(R, false);
  for (int64_t i = 0; i < k; ++i) {
    if (r[i] < 0 || r[i] >= R || seen[r[i]])
      throw std::invalid_argument("rows: expected distinct indices in [0, " + std::to_string(R) + "), got " +
                                  std::to_string(r[i]) + " at position " + std::to_string(i));
    seen[r[i]] = true;
  }
  return r;
}

void direction(const py::dict& st, const py::array& rows) {
  dispatch(st, [&](auto b) {
    const int64_t* r = rows_of(rows, b.rows);
    py::gil_scoped_release release;
    ifk::direction(b, r, rows.shape(0));
  });
}

void trial(const py::dict& st, const py::array& rows) {
  dispatch(st, [&](auto b) {
    const int64_t* r = rows_of(rows, b.rows);
    py::gil_scoped_release release;
    ifk::trial(b, r, rows.shape(0));
  });
}

void propose(const py::dict& st, const py::array& rows) {
  dispatch(st, [&](auto b) {
    const int64_t* r = rows_of(rows, b.rows);
    py::gil_scoped_release release;
    ifk::propose(b, r, rows.shape(0));
  });
}

void accept(const py::dict& st, const py::array& rows, const py::array& f_t, const py::array& g_t, int64_t max_iter,
            int64_t max_fun, int64_t max_ls, double gtol, double ftol, double c1, double c2) {
  dispatch(st, [&](auto b) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(b.x)>>;
    const int64_t* r = rows_of(rows, b.rows);
    const int64_t k = rows.shape(0);
    const T* ft = data_of<T>(f_t, "f_t", {k});
    const T* gt = data_of<T>(g_t, "g_t", {k, b.n});
    const ifk::Settings opt{max_iter, max_fun, max_ls, gtol, ftol, c1, c2};
    py::gil_scoped_release release;
    ifk::accept(b, r, k, ft, gt, opt);
  });
}

}  // namespace

PYBIND11_MODULE(_C, mod) {
  mod.doc() = "intriguing_fast native CPU core: the fused steps of a projected L-BFGS iteration (C++17, OpenMP)";
  mod.def("direction", &direction, py::arg("state"), py::arg("rows"),
          "In place, for the problems in `rows` that need one: search direction d, g.d, first step t.");
  mod.def("trial", &trial, py::arg("state"), py::arg("rows"),
          "In place: row i of x_trial = P(x + t d) of problem rows[i], and its slope g.(x_trial - x).");
  mod.def("propose", &propose, py::arg("state"), py::arg("rows"),
          "In place: direction and trial fused, row by row, for the problems in `rows`.");
  mod.def("accept", &accept, py::arg("state"), py::arg("rows"), py::arg("f_t"), py::arg("g_t"), py::arg("max_iter"),
          py::arg("max_fun"), py::arg("max_ls"), py::arg("gtol"), py::arg("ftol"), py::arg("c1"), py::arg("c2"),
          "In place, for the problems in `rows` (row i of x_trial, f_t, g_t): Armijo test, history update, move, status.");
  mod.def("flushing_denormals", &ifk::flushing_denormals,
          "Whether the calling thread treats subnormal floats as zero (x86 FTZ and DAZ both set).");
  mod.def("set_flush_denormals", &ifk::set_flush_denormals, py::arg("on"),
          "Set (or clear) FTZ and DAZ on every thread of the OpenMP pool; False where the CPU has no such flags.");
}
