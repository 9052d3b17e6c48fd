// pybind11 binding of the ccradix library: NumPy arrays in and out, the GIL released while the
// C++ code runs. All Python-facing checks live here; the library itself knows no Python.
//
// Input policy (documented in docs/native.md and the stub):
//   * dtype must be one of uint32, int32, uint64, int64, float32, float64 in native byte order,
//     else TypeError. Nothing is cast: a silent cast would change the dtype of the result.
//   * arrays must be one-dimensional, else ValueError.
//   * non-contiguous input is copied to a contiguous array first (inplace=False only);
//     inplace=True needs a writeable C-contiguous array, else ValueError.
#include <pybind11/gil_safe_call_once.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ccradix/ccradix.hpp"

namespace py = pybind11;

namespace {

enum class Kind { u32, i32, u64, i64, f32, f64 };

Kind key_kind(const py::array& a, const char* what) {
    const py::dtype dt = a.dtype();
    const char kind = dt.kind();
    const auto size = dt.itemsize();
    // '=' native, '|' not applicable; on little-endian hosts numpy may also report '<'.
    const char order = dt.byteorder();
    const bool native = order == '=' || order == '|' ||
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                        order == '>';
#else
                        order == '<';
#endif
    if (native) {
        if (kind == 'u' && size == 4) return Kind::u32;
        if (kind == 'i' && size == 4) return Kind::i32;
        if (kind == 'u' && size == 8) return Kind::u64;
        if (kind == 'i' && size == 8) return Kind::i64;
        if (kind == 'f' && size == 4) return Kind::f32;
        if (kind == 'f' && size == 8) return Kind::f64;
    }
    throw py::type_error(std::string(what) +
                         ": ccradix sorts uint32, int32, uint64, int64, float32 and float64 "
                         "arrays in native byte order, not " +
                         py::str(static_cast<py::object>(dt)).cast<std::string>());
}

void require_1d(const py::array& a, const char* what) {
    if (a.ndim() != 1)
        throw py::value_error(std::string(what) + ": expected a one-dimensional array, got " +
                              std::to_string(a.ndim()) + " dimensions");
}

unsigned thread_count(int threads) {
    if (threads < 1) throw py::value_error("threads must be >= 1");
    return static_cast<unsigned>(threads);
}

ccradix::FirstPass first_pass_from(const std::string& name) {
    if (name == "auto") return ccradix::FirstPass::automatic;
    if (name == "simple") return ccradix::FirstPass::simple;
    if (name == "buffered") return ccradix::FirstPass::buffered;
    if (name == "streaming") return ccradix::FirstPass::streaming;
    if (name == "measured") return ccradix::FirstPass::measured;
    throw py::value_error("first_pass must be auto, simple, buffered, streaming or measured");
}

// Contiguous view of `a` with the bits of T (a copy only when `a` is not C-contiguous).
template <class T> py::array_t<T, py::array::c_style | py::array::forcecast> contiguous(py::array a) {
    return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
}

// ---- the cut-over to numpy.sort ------------------------------------------------------------
// numpy sorts these keys with x86-simd-sort: AVX-512 kernels on CPUs that have them (unless
// NPY_DISABLE_CPU_FEATURES turns them off), AVX2 ones otherwise. On small and mid-sized arrays
// they beat the radix engine: their cost per key grows with log n, while a radix pass costs the
// same per key at any size, and 32-bit keys need three passes (64-bit keys more) however few
// they are. Where the AVX-512 kernels are fast (Zen 5), one thread of the engine beats them only
// on 64-bit keys. So sort() hands arrays below these sizes to numpy's sort: where the engine
// became the faster on uniform keys on the machines this project is measured on
// (docs/native.md), for one thread and for two or more (numpy's sort has one).
struct RadixFrom {
    std::size_t one_thread, threads;
    std::size_t for_threads(unsigned t) const { return t > 1 ? threads : one_thread; }
};
constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();
constexpr std::size_t pow2(int e) { return std::size_t(1) << e; }

// By Kind: u32, i32, u64, i64, f32, f64.
constexpr RadixFrom kAgainstAvx512[] = {{pow2(26), pow2(20)}, {kNever, pow2(21)},
                                        {pow2(16), pow2(16)}, {pow2(17), pow2(17)},
                                        {kNever, pow2(22)}, {pow2(23), pow2(20)}};
// AVX2 kernels, and AVX-512 ones slower than the engine (Zen 4's).
constexpr RadixFrom kAgainstOther[] = {{pow2(19), pow2(18)}, {pow2(19), pow2(17)},
                                      {pow2(12), pow2(12)}, {pow2(13), pow2(13)},
                                      {pow2(22), pow2(19)}, {pow2(21), pow2(17)}};

// ndarray's own sort (looked up once: an import and two attribute lookups cost more than numpy's
// whole sort of a thousand keys). It releases the GIL itself.
const py::object& ndarray_sort() {
    PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> method;
    return method
        .call_once_and_store_result(
            [] { return py::module_::import("numpy").attr("ndarray").attr("sort"); })
        .get_stored();
}

// Whether numpy's sort runs AVX-512 kernels in this process: it dispatches them when its
// AVX512_SKX feature group is available and not disabled.
bool numpy_has_avx512_kernels() {
    py::module_ umath;
    try {
        umath = py::module_::import("numpy._core._multiarray_umath");
    } catch (py::error_already_set&) {  // numpy 1.x
        umath = py::module_::import("numpy.core._multiarray_umath");
    }
    const py::dict features = umath.attr("__cpu_features__");
    return features.contains("AVX512_SKX") && features["AVX512_SKX"].cast<bool>();
}

// Whether numpy's sort beats one thread of the engine on 2^17 uniform 32-bit keys (best of three,
// about 2 ms). The AVX-512 kernels do on Zen 5; on Zen 4 (whose compressing stores are slow)
// they are several times slower than even the AVX2 ones, and far slower than the engine.
bool numpy_beats_the_engine() {
    constexpr std::size_t n = std::size_t(1) << 17;
    std::vector<std::uint32_t> keys(n);
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& k : keys) {  // xorshift64: fixed, uniform keys
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        k = static_cast<std::uint32_t>(x >> 32);
    }
    py::array_t<std::uint32_t> work(static_cast<py::ssize_t>(n));
    auto* w = work.mutable_data();
    using Clock = std::chrono::steady_clock;
    Clock::duration numpy = Clock::duration::max(), engine = numpy;
    for (int round = 0; round < 3; ++round) {
        auto start = Clock::now();
        std::memcpy(w, keys.data(), n * sizeof *w);
        ndarray_sort()(work);
        numpy = std::min(numpy, Clock::now() - start);
        start = Clock::now();
        ccradix::sort<std::uint32_t>(keys.data(), w, n, ccradix::Options{});
        engine = std::min(engine, Clock::now() - start);
    }
    return numpy < engine;
}

const RadixFrom* g_radix_from = kAgainstOther;  // set when the module loads

template <class T> constexpr Kind kind_of() {
    if constexpr (std::is_same<T, float>::value) return Kind::f32;
    if constexpr (std::is_same<T, double>::value) return Kind::f64;
    if constexpr (std::is_signed<T>::value) return sizeof(T) == 4 ? Kind::i32 : Kind::i64;
    return sizeof(T) == 4 ? Kind::u32 : Kind::u64;
}

template <class T, class U> T value_of(U bits) {
    T v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

template <class T, class U> std::size_t count_negative_zeros(const U* bits, std::size_t n) {
    const U negative_zero = U(1) << (sizeof(U) * 8 - 1);
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) count += bits[i] == negative_zero;
    return count;
}

// numpy orders -0.0 and +0.0 as equal, and does not keep the bits of zeros and NaNs (its SIMD
// min/max return the same operand for either zero). In sorted `bits`: as many -0.0 as the input
// held, then +0.0, and every NaN (all last) the canonical quiet NaN, as the engine writes them.
// `negative_zeros()` counts them in the input; it is called only if two zeros or more came out.
template <class T, class U, class Count>
void restore_zeros_and_nans(U* bits, std::size_t n, Count negative_zeros) {
    const U quiet_nan = ccradix::detail::KeyTraits<T>::from_key(
        ccradix::detail::KeyTraits<T>::to_key(U(~U(0))));  // any NaN's key: the canonical one
    std::size_t end = n;
    while (end > 0 && std::isnan(value_of<T>(bits[end - 1]))) bits[--end] = quiet_nan;
    U* const first = bits;
    U* const last = bits + end;
    U* zeros = std::partition_point(first, last, [](U b) { return value_of<T>(b) < T(0); });
    U* positive = std::partition_point(zeros, last, [](U b) { return value_of<T>(b) <= T(0); });
    if (positive - zeros < 2) return;  // a lone zero keeps its bits
    U* split = zeros + negative_zeros();
    std::fill(zeros, split, U(1) << (sizeof(U) * 8 - 1));
    std::fill(split, positive, U(0));
}

// f(), without the GIL unless the work is too small to pay for handing it over and back.
template <class F> void without_gil_if_large(std::size_t n, F f) {
    if (n < (std::size_t(1) << 16)) return f();
    py::gil_scoped_release release;
    f();
}

// Sorts `out` (n keys) with numpy's sort. `original`: the same keys, left unsorted (a copy was
// given), or null (`out` is the input itself).
template <class T>
py::array sort_with_numpy(py::array out, const ccradix::detail::Bits<T>* original,
                          bool descending) {
    using U = ccradix::detail::Bits<T>;
    const auto n = static_cast<std::size_t>(out.size());
    auto* bits = static_cast<U*>(out.mutable_data());
    std::size_t counted = 0;  // the input's -0.0, if it will not survive the sort
    if (std::is_floating_point<T>::value && original == nullptr)
        without_gil_if_large(n, [&] { counted = count_negative_zeros<T>(bits, n); });
    ndarray_sort()(out);  // ndarray's, also for a subclass that overrides it (the engine does)
    without_gil_if_large(n, [&] {
        if constexpr (std::is_floating_point<T>::value)
            restore_zeros_and_nans<T>(bits, n, [&] {
                return original == nullptr ? counted : count_negative_zeros<T>(original, n);
            });
        if (descending) std::reverse(bits, bits + n);
    });
    return out;
}

template <class T>
py::array sort_typed(py::array a, bool inplace, const ccradix::Options& opt, bool cut_over) {
    using U = ccradix::detail::Bits<T>;
    const auto n = static_cast<std::size_t>(a.size());
    const bool to_numpy =
        cut_over && n < g_radix_from[int(kind_of<T>())].for_threads(opt.threads);
    if (inplace) {
        if (!a.writeable()) throw py::value_error("sort(inplace=True): the array is read-only");
        if (!(a.flags() & py::array::c_style))
            throw py::value_error("sort(inplace=True): the array must be C-contiguous");
        if (to_numpy) return sort_with_numpy<T>(a, nullptr, opt.descending);
        auto* data = static_cast<U*>(a.mutable_data());
        {
            py::gil_scoped_release release;
            ccradix::sort<T>(data, data, n, opt);
        }
        return a;
    }
    auto in = contiguous<T>(a);  // a base-class ndarray, as every result is
    const auto* src = reinterpret_cast<const U*>(in.data());
    if (to_numpy) {  // the copy in one call, as numpy.sort makes it
        auto copy = py::reinterpret_steal<py::array>(
            py::detail::npy_api::get().PyArray_NewCopy_(in.ptr(), /* NPY_CORDER */ 0));
        if (!copy) throw py::error_already_set();
        return sort_with_numpy<T>(copy, src, opt.descending);
    }
    py::array_t<T> out(static_cast<py::ssize_t>(n));
    auto* dst = reinterpret_cast<U*>(out.mutable_data());
    {
        py::gil_scoped_release release;
        ccradix::sort<T>(src, dst, n, opt);
    }
    return out;
}

py::array sort_any(py::array a, bool inplace, bool descending, int threads,
                   const std::string& first_pass, bool cut_over) {
    require_1d(a, "sort");
    ccradix::Options opt;
    opt.threads = thread_count(threads);
    opt.descending = descending;
    opt.first_pass = first_pass_from(first_pass);
    switch (key_kind(a, "sort")) {
        case Kind::u32: return sort_typed<std::uint32_t>(a, inplace, opt, cut_over);
        case Kind::i32: return sort_typed<std::int32_t>(a, inplace, opt, cut_over);
        case Kind::u64: return sort_typed<std::uint64_t>(a, inplace, opt, cut_over);
        case Kind::i64: return sort_typed<std::int64_t>(a, inplace, opt, cut_over);
        case Kind::f32: return sort_typed<float>(a, inplace, opt, cut_over);
        case Kind::f64: return sort_typed<double>(a, inplace, opt, cut_over);
    }
    throw py::type_error("unreachable");
}

template <class T> py::array argsort_typed(py::array a, const ccradix::Options& opt) {
    using U = ccradix::detail::Bits<T>;
    auto in = contiguous<T>(a);
    const auto n = static_cast<std::size_t>(in.size());
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
    const auto* src = reinterpret_cast<const U*>(in.data());
    auto* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        ccradix::argsort<T>(src, dst, n, opt);
    }
    return out;
}

py::array argsort_any(py::array a, int threads) {
    require_1d(a, "argsort");
    ccradix::Options opt;
    opt.threads = thread_count(threads);
    switch (key_kind(a, "argsort")) {
        case Kind::u32: return argsort_typed<std::uint32_t>(a, opt);
        case Kind::i32: return argsort_typed<std::int32_t>(a, opt);
        case Kind::u64: return argsort_typed<std::uint64_t>(a, opt);
        case Kind::i64: return argsort_typed<std::int64_t>(a, opt);
        case Kind::f32: return argsort_typed<float>(a, opt);
        case Kind::f64: return argsort_typed<double>(a, opt);
    }
    throw py::type_error("unreachable");
}

template <class T, class V>
py::tuple pairs_typed(py::array keys, py::array values, const ccradix::Options& opt) {
    using U = ccradix::detail::Bits<T>;
    auto k = contiguous<T>(keys);
    // Values are moved as raw bits, whatever their dtype: only the item size matters.
    py::array v = py::array::ensure(values, py::array::c_style);
    if (!v) throw py::value_error("sort_pairs: values could not be made contiguous");
    const auto n = static_cast<std::size_t>(k.size());
    py::array_t<T> keys_out(static_cast<py::ssize_t>(n));
    py::array values_out(v.dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
    const auto* ks = reinterpret_cast<const U*>(k.data());
    const auto* vs = static_cast<const V*>(v.data());
    auto* ko = reinterpret_cast<U*>(keys_out.mutable_data());
    auto* vo = static_cast<V*>(values_out.mutable_data());
    {
        py::gil_scoped_release release;
        ccradix::sort_pairs<T, V>(ks, vs, ko, vo, n, opt);
    }
    return py::make_tuple(keys_out, values_out);
}

template <class T>
py::tuple pairs_by_value(py::array keys, py::array values, const ccradix::Options& opt) {
    const py::dtype vt = values.dtype();
    if (vt.kind() == 'O' || vt.has_fields() || vt.kind() == 'V')
        throw py::type_error("sort_pairs: values must have a plain numeric dtype, not " +
                             py::str(static_cast<py::object>(vt)).cast<std::string>());
    switch (vt.itemsize()) {
        case 4: return pairs_typed<T, std::uint32_t>(keys, values, opt);
        case 8: return pairs_typed<T, std::uint64_t>(keys, values, opt);
        default:
            throw py::type_error("sort_pairs: values must have a 4- or 8-byte dtype, not " +
                                 py::str(static_cast<py::object>(vt)).cast<std::string>());
    }
}

py::tuple sort_pairs_any(py::array keys, py::array values, bool descending, int threads) {
    require_1d(keys, "sort_pairs");
    require_1d(values, "sort_pairs");
    if (keys.size() != values.size())
        throw py::value_error("sort_pairs: keys and values differ in length (" +
                              std::to_string(keys.size()) + " != " +
                              std::to_string(values.size()) + ")");
    ccradix::Options opt;
    opt.threads = thread_count(threads);
    opt.descending = descending;
    switch (key_kind(keys, "sort_pairs")) {
        case Kind::u32: return pairs_by_value<std::uint32_t>(keys, values, opt);
        case Kind::i32: return pairs_by_value<std::int32_t>(keys, values, opt);
        case Kind::u64: return pairs_by_value<std::uint64_t>(keys, values, opt);
        case Kind::i64: return pairs_by_value<std::int64_t>(keys, values, opt);
        case Kind::f32: return pairs_by_value<float>(keys, values, opt);
        case Kind::f64: return pairs_by_value<double>(keys, values, opt);
    }
    throw py::type_error("unreachable");
}

// Benchmark reference points, on unsigned keys only (they sort in place).
template <class F> void reference(py::array a, F&& run32, F&& run64) {
    require_1d(a, "reference");
    if (!a.writeable() || !(a.flags() & py::array::c_style))
        throw py::value_error("reference sorts need a writeable C-contiguous array");
    const auto n = static_cast<std::size_t>(a.size());
    const Kind kind = key_kind(a, "reference");
    if (kind == Kind::u32) {
        auto* p = static_cast<std::uint32_t*>(a.mutable_data());
        py::gil_scoped_release release;
        run32(p, n);
    } else if (kind == Kind::u64) {
        auto* p = static_cast<std::uint64_t*>(a.mutable_data());
        py::gil_scoped_release release;
        run64(p, n);
    } else {
        throw py::type_error("reference sorts take uint32 or uint64 arrays");
    }
}

}  // namespace

PYBIND11_MODULE(_ccradix, m) {
    m.doc() = "CC-Radix sort for NumPy arrays (see the ccradix package for the documented API)";

    // Positional parameters: the Python package calls them so (pybind11 spends about 0.1 µs on
    // each keyword argument, a fifth of a whole sort of 100 keys).
    m.def("sort", &sort_any, py::arg("a"), py::arg("inplace") = false,
          py::arg("descending") = false, py::arg("threads") = 1, py::arg("first_pass") = "auto",
          py::arg("cut_over") = true);
    // The cut-over sizes, for the tests and the benchmark: dtype name -> (from this many keys
    // with one thread, with more; None: never), against the kernels of m.NUMPY_SORT.
    const bool avx512 = numpy_has_avx512_kernels() && numpy_beats_the_engine();
    g_radix_from = avx512 ? kAgainstAvx512 : kAgainstOther;
    m.attr("NUMPY_SORT") = avx512 ? "avx512" : "other";
    py::dict radix_sizes;
    const char* names[] = {"uint32", "int32", "uint64", "int64", "float32", "float64"};  // Kind
    auto size = [](std::size_t v) { return v == kNever ? py::none() : py::object(py::int_(v)); };
    for (int k = 0; k < 6; ++k)
        radix_sizes[names[k]] =
            py::make_tuple(size(g_radix_from[k].one_thread), size(g_radix_from[k].threads));
    m.attr("RADIX_FROM") = radix_sizes;
    m.def("argsort", &argsort_any, py::arg("a"), py::arg("threads") = 1);
    m.def("sort_pairs", &sort_pairs_any, py::arg("keys"), py::arg("values"),
          py::arg("descending") = false, py::arg("threads") = 1);
    m.def("release_scratch", &ccradix::release_scratch);

    m.def("_reference_std_sort", [](py::array a) {
        struct Run {
            void operator()(std::uint32_t* p, std::size_t n) const {
                ccradix::reference_std_sort(p, n);
            }
            void operator()(std::uint64_t* p, std::size_t n) const {
                ccradix::reference_std_sort(p, n);
            }
        } run;
        reference(a, run, run);
    });
    m.def("_reference_lsd8", [](py::array a) {
        struct Run {
            void operator()(std::uint32_t* p, std::size_t n) const { ccradix::reference_lsd8(p, n); }
            void operator()(std::uint64_t* p, std::size_t n) const { ccradix::reference_lsd8(p, n); }
        } run;
        reference(a, run, run);
    });
}
