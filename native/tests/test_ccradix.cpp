// Unit tests of the ccradix library alone (no Python). A tiny self-contained harness: the build
// must not download anything, and the checks are plain comparisons against std::stable_sort.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ccradix/ccradix.hpp"

namespace {

int g_failures = 0;
int g_checks = 0;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        ++g_checks;                                                              \
        if (!(cond)) {                                                           \
            ++g_failures;                                                        \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                   \
            std::fprintf(stderr, "\n");                                          \
        }                                                                        \
    } while (0)

template <class T> using Bits = ccradix::detail::Bits<T>;

template <class T> Bits<T> bits_of(T v) {
    Bits<T> b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}
template <class T> T value_of(Bits<T> b) {
    T v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}

// The order numpy.sort produces, written without the bit tricks under test: NaNs last, and
// -0.0 before +0.0 (numpy leaves equal zeros in any order; ccradix promises this one).
template <class T> bool reference_less(T a, T b) {
    if constexpr (std::is_floating_point<T>::value) {
        if (std::isnan(a)) return false;
        if (std::isnan(b)) return true;
        if (a == 0 && b == 0) return std::signbit(a) && !std::signbit(b);
    }
    return a < b;
}

template <class T> std::vector<T> canonical_nans(std::vector<T> v) {
    if constexpr (std::is_floating_point<T>::value)
        for (auto& x : v)
            if (std::isnan(x)) x = std::numeric_limits<T>::quiet_NaN();
    return v;
}

template <class T> Bits<T> canonical_bits(T x) {
    if constexpr (std::is_floating_point<T>::value)
        if (std::isnan(x)) x = std::numeric_limits<T>::quiet_NaN();
    return bits_of(x);
}

template <class T> std::vector<T> expected_sort(const std::vector<T>& in, bool descending) {
    std::vector<T> e = canonical_nans(in);
    std::stable_sort(e.begin(), e.end(), reference_less<T>);
    if (descending) std::reverse(e.begin(), e.end());
    return e;
}

template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T> std::string type_name() {
    if (std::is_same<T, std::uint32_t>::value) return "uint32";
    if (std::is_same<T, std::int32_t>::value) return "int32";
    if (std::is_same<T, std::uint64_t>::value) return "uint64";
    if (std::is_same<T, std::int64_t>::value) return "int64";
    if (std::is_same<T, float>::value) return "float32";
    return "float64";
}

// ---- data -----------------------------------------------------------------------------------

template <class T> T from_u64(std::uint64_t r) {
    if constexpr (std::is_floating_point<T>::value) {
        // Spread over many magnitudes and both signs, not just [0, 1).
        const double m = double(r % 2000001) / 1000.0 - 1000.0;
        return static_cast<T>(m * std::pow(10.0, double(int(r >> 40) % 20 - 10)));
    } else {
        return static_cast<T>(r);
    }
}

enum class Dist { uniform, small_range, all_equal, few_unique, skewed, specials, sorted, reverse };
const Dist kDists[] = {Dist::uniform, Dist::small_range, Dist::all_equal, Dist::few_unique,
                       Dist::skewed,  Dist::specials,    Dist::sorted,    Dist::reverse};
const char* dist_name(Dist d) {
    switch (d) {
        case Dist::uniform: return "uniform";
        case Dist::small_range: return "small_range";
        case Dist::all_equal: return "all_equal";
        case Dist::few_unique: return "few_unique";
        case Dist::skewed: return "skewed";
        case Dist::specials: return "specials";
        case Dist::sorted: return "sorted";
        case Dist::reverse: return "reverse";
    }
    return "?";
}

template <class T> std::vector<T> make_data(Dist dist, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<T> v(n);
    switch (dist) {
        case Dist::uniform:
            for (auto& x : v) x = from_u64<T>(rng());
            if constexpr (!std::is_floating_point<T>::value)
                for (auto& x : v) x = value_of<T>(static_cast<Bits<T>>(rng()));
            break;
        case Dist::small_range:  // only low bits vary: the top digits must be skipped
            for (auto& x : v) x = static_cast<T>(rng() % 5000);
            break;
        case Dist::all_equal:
            for (auto& x : v) x = static_cast<T>(42);
            break;
        case Dist::few_unique: {
            T vals[16];
            for (auto& u : vals) u = from_u64<T>(rng());
            for (auto& x : v) x = vals[rng() % 16];
            break;
        }
        case Dist::skewed:  // most keys in one top-level bucket: the out-of-cache recursion
            for (auto& x : v) {
                const std::uint64_t r = rng();
                x = (r % 8 != 0) ? static_cast<T>(1000 + (r >> 20) % 1000000) : from_u64<T>(r);
            }
            break;
        case Dist::specials:
            for (auto& x : v) {
                const std::uint64_t r = rng();
                if constexpr (std::is_floating_point<T>::value) {
                    const T choices[] = {std::numeric_limits<T>::quiet_NaN(),
                                         -std::numeric_limits<T>::quiet_NaN(),
                                         std::numeric_limits<T>::infinity(),
                                         -std::numeric_limits<T>::infinity(),
                                         T(0.0),
                                         T(-0.0),
                                         std::numeric_limits<T>::max(),
                                         std::numeric_limits<T>::lowest(),
                                         std::numeric_limits<T>::denorm_min(),
                                         -std::numeric_limits<T>::denorm_min(),
                                         T(1.5)};
                    x = choices[r % (sizeof choices / sizeof choices[0])];
                    if (r % 97 == 0) x = value_of<T>(bits_of(x) | 1);  // NaN payloads too
                } else {
                    const T choices[] = {std::numeric_limits<T>::min(),
                                         std::numeric_limits<T>::max(), T(0), T(1), T(-1)};
                    x = choices[r % 5];
                }
            }
            break;
        case Dist::sorted:
            for (auto& x : v) x = from_u64<T>(rng());
            v = expected_sort(v, false);
            break;
        case Dist::reverse:
            for (auto& x : v) x = from_u64<T>(rng());
            v = expected_sort(v, true);
            break;
    }
    return v;
}

// ---- checks ---------------------------------------------------------------------------------

template <class T>
void check_sort(const std::vector<T>& in, const std::vector<T>& want, const ccradix::Options& opt,
                const std::string& what) {
    std::vector<T> out(in.size());
    ccradix::sort<T>(reinterpret_cast<const Bits<T>*>(in.data()),
                     reinterpret_cast<Bits<T>*>(out.data()), in.size(), opt);
    CHECK(same_bits(out, want), "sort copy %s", what.c_str());
    std::vector<T> inplace = in;
    ccradix::sort<T>(reinterpret_cast<Bits<T>*>(inplace.data()), inplace.size(), opt);
    CHECK(same_bits(inplace, want), "sort in place %s", what.c_str());
}

// numpy's stable argsort: zeros of either sign are equal.
template <class T> bool argsort_less(T a, T b) {
    if constexpr (std::is_floating_point<T>::value)
        if (a == 0 && b == 0) return false;
    return reference_less(a, b);
}

template <class T> std::vector<std::int64_t> expected_argsort(const std::vector<T>& in) {
    std::vector<std::int64_t> want(in.size());
    std::iota(want.begin(), want.end(), std::int64_t(0));
    std::stable_sort(want.begin(), want.end(), [&](std::int64_t a, std::int64_t b) {
        return argsort_less(in[std::size_t(a)], in[std::size_t(b)]);
    });
    return want;
}

template <class T>
void check_argsort(const std::vector<T>& in, const std::vector<std::int64_t>& want,
                   const ccradix::Options& opt, const std::string& what) {
    std::vector<std::int64_t> got(in.size(), -1);
    ccradix::argsort<T>(reinterpret_cast<const Bits<T>*>(in.data()), got.data(), in.size(), opt);
    CHECK(got == want, "argsort %s", what.c_str());
}

template <class T, class V>
void check_pairs(const std::vector<T>& in, const ccradix::Options& opt, const std::string& what) {
    std::vector<V> values(in.size());
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<V>(i * 7 + 3);
    std::vector<std::size_t> order(in.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return reference_less(in[a], in[b]); });
    if (opt.descending) {
        // Descending is the exact reverse order of the transformed keys; ties keep input order
        // (stable), so reverse whole runs of equal keys back.
        std::vector<std::size_t> rev;
        std::size_t i = order.size();
        while (i > 0) {
            std::size_t j = i - 1;
            const Bits<T> k = canonical_bits(in[order[j]]);
            while (j > 0 && canonical_bits(in[order[j - 1]]) == k) --j;
            for (std::size_t t = j; t < i; ++t) rev.push_back(order[t]);
            i = j;
        }
        order = rev;
    }
    std::vector<T> want_keys(in.size());
    std::vector<V> want_values(in.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        want_keys[i] = in[order[i]];
        want_values[i] = values[order[i]];
    }
    want_keys = canonical_nans(want_keys);
    std::vector<T> got_keys(in.size());
    std::vector<V> got_values(in.size());
    ccradix::sort_pairs<T, V>(reinterpret_cast<const Bits<T>*>(in.data()), values.data(),
                              reinterpret_cast<Bits<T>*>(got_keys.data()), got_values.data(),
                              in.size(), opt);
    CHECK(same_bits(got_keys, want_keys), "sort_pairs keys %s", what.c_str());
    CHECK(got_values == want_values, "sort_pairs values %s", what.c_str());
}

const std::size_t kSizes[] = {0, 1, 2, 3, 31, 32, 33, 100, 1000, 4097, 70000, 200000};

template <class T> void test_type() {
    std::uint64_t seed = 1;
    for (Dist dist : kDists) {
        for (std::size_t n : kSizes) {
            const auto in = make_data<T>(dist, n, seed++);
            const auto want_up = expected_sort(in, false);
            const auto want_down = expected_sort(in, true);
            const auto want_idx = expected_argsort(in);
            for (unsigned threads : {1u, 2u, 3u}) {
                if (threads > 1 && n < 70000) continue;
                for (bool desc : {false, true}) {
                    ccradix::Options opt;
                    opt.threads = threads;
                    opt.descending = desc;
                    const std::string what = type_name<T>() + " " + dist_name(dist) + " n=" +
                                             std::to_string(n) + " threads=" +
                                             std::to_string(threads) + (desc ? " desc" : "");
                    check_sort(in, desc ? want_down : want_up, opt, what);
                    if (!desc) check_argsort(in, want_idx, opt, what);
                    if (threads == 1 || dist == Dist::skewed) {
                        check_pairs<T, std::uint32_t>(in, opt, what + " v32");
                        if (n <= 4097 || dist == Dist::skewed)
                            check_pairs<T, double>(in, opt, what + " v64");
                    }
                }
            }
        }
    }
}

void test_first_pass_variants() {
    // Each way of writing the first pass gives the same bytes (large enough to use it), for each
    // way of choosing the buckets: by a digit, by a table of prefixes (uniform doubles), by
    // magnitude (mostly small keys).
    std::mt19937_64 rng(12);
    std::vector<std::uint32_t> skewed(400009);
    for (auto& x : skewed)
        x = static_cast<std::uint32_t>(rng() % 10 < 7 ? rng() % 100 : rng() % (1u << 28));
    for (auto mode : {ccradix::FirstPass::simple, ccradix::FirstPass::buffered,
                      ccradix::FirstPass::streaming, ccradix::FirstPass::measured}) {
        for (unsigned threads : {1u, 2u}) {
            ccradix::Options opt;
            opt.first_pass = mode;
            opt.threads = threads;
            const std::string what = "first pass " + std::to_string(int(mode)) + " threads " +
                                     std::to_string(threads);
            const auto u32 = make_data<std::uint32_t>(Dist::uniform, 1000003, 7);
            check_sort(u32, expected_sort(u32, false), opt, what + " u32");
            const auto f64 = make_data<double>(Dist::uniform, 300001, 8);
            check_sort(f64, expected_sort(f64, false), opt, what + " f64");
            const auto i64 = make_data<std::int64_t>(Dist::skewed, 300001, 9);
            check_sort(i64, expected_sort(i64, false), opt, what + " i64 skewed");
            const auto f32 = make_data<float>(Dist::uniform, 200003, 10);
            check_argsort(f32, expected_argsort(f32), opt, what + " argsort");
            check_sort(skewed, expected_sort(skewed, false), opt, what + " u32 skewed");
            check_pairs<std::uint32_t, std::uint64_t>(skewed, opt, what + " u32 skewed pairs");
        }
    }
}

// Runs f(options, label) with one thread and with two.
template <class F> void on_one_and_two_threads(F f) {
    for (unsigned threads : {1u, 2u}) {
        ccradix::Options opt;
        opt.threads = threads;
        f(opt, " threads=" + std::to_string(threads));
    }
}

void test_large_paths() {
    // Inputs past the in-cache size that take each first-pass strategy, on one and two threads:
    // Zipf-like integers (most keys small: buckets by magnitude), normal floats (crowded top
    // digit with every bit in use: the 16-bit prefix table).
    std::mt19937_64 rng(21);
    std::vector<std::uint32_t> zipf(1200001);
    for (auto& x : zipf) {
        const double u = double(rng() >> 11) / double(std::uint64_t(1) << 53);
        x = static_cast<std::uint32_t>(std::min(std::floor(std::pow(1.0 - u, -5.0)), 1e9));
    }
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> f64(700001);
    for (auto& x : f64) x = normal(rng) * 1e6;
    std::vector<float> f32(1200001);
    for (auto& x : f32) x = static_cast<float>(normal(rng));
    on_one_and_two_threads([&](const ccradix::Options& opt, const std::string& what) {
        check_sort(zipf, expected_sort(zipf, false), opt, "zipf u32" + what);
        check_argsort(zipf, expected_argsort(zipf), opt, "zipf u32" + what);
        check_pairs<std::uint32_t, std::uint32_t>(zipf, opt, "zipf u32" + what);
        check_sort(f64, expected_sort(f64, false), opt, "normal f64" + what);
        check_argsort(f64, expected_argsort(f64), opt, "normal f64" + what);
        check_pairs<double, std::uint64_t>(f64, opt, "normal f64" + what);
        check_sort(f32, expected_sort(f32, false), opt, "normal f32" + what);
    });
    // Few distinct keys: written out from the histogram, with and without the check that each
    // bucket holds one key (random values; multiples of 16 below 4096, which the digit spans),
    // and from the 16-bit prefixes (64-bit values crowded in one top digit but for one).
    std::vector<std::uint32_t> few32(1200001), steps32(1200001);
    std::vector<std::uint64_t> few64(1200001);
    std::uint32_t vals32[16];
    std::uint64_t vals64[16];
    for (auto& v : vals32) v = static_cast<std::uint32_t>(rng());
    for (auto& v : vals64) v = 0xF000000000000000ull | (rng() >> 4);
    vals64[0] &= 0x7FFFFFFFFFFFFFFFull;
    for (auto& x : few32) x = vals32[rng() % 16];
    for (auto& x : steps32) x = static_cast<std::uint32_t>(rng() % 256) * 16;
    for (auto& x : few64) x = vals64[rng() % 16];
    for (bool desc : {false, true}) {
        ccradix::Options opt;
        opt.descending = desc;
        const std::string what = desc ? " desc" : "";
        check_sort(few32, expected_sort(few32, desc), opt, "few u32" + what);
        check_sort(steps32, expected_sort(steps32, desc), opt, "steps u32" + what);
        check_sort(few64, expected_sort(few64, desc), opt, "few u64" + what);
    }
}

void test_skewed_keys() {
    // Mostly small keys, yet many distinct: the first pass goes by magnitude.
    std::mt19937_64 rng(33);
    // 64-bit keys up to 2^62, many of them just below a power of two, where the conversion to
    // double that finds a key's magnitude rounds up.
    std::vector<std::uint64_t> wide(1200001);
    for (auto& x : wide) {
        const int k = 53 + int(rng() % 10);
        x = rng() % 10 < 7 ? rng() % 1000 : (std::uint64_t(1) << k) - 1 - rng() % 64;
    }
    // One magnitude bucket larger than the cache: 60% of the keys share their top 5 bits.
    std::vector<std::uint32_t> dense(1200001);
    for (auto& x : dense)
        x = static_cast<std::uint32_t>(rng() % 10 < 6 ? (1u << 16) + rng() % 4096
                                                       : rng() % (1u << 27));
    // The sample misses the only keys with high bits (odd positions near the start): the
    // counting pass sees them and is repeated. Once for skewed keys, once for uniform ones.
    std::vector<std::uint32_t> hidden_high(1200001), hidden_skewed(1200001);
    for (auto& x : hidden_high) x = static_cast<std::uint32_t>(rng() % (1u << 20));
    for (auto& x : hidden_skewed)
        x = static_cast<std::uint32_t>(rng() % 10 < 7 ? rng() % 100 : rng() % (1u << 20));
    for (std::size_t i : {1, 3, 5})
        hidden_high[i] = hidden_skewed[i] = 0xFFFFFFF0u + std::uint32_t(i);
    // Fits in the cache, but skewed: bucketed by magnitude all the same.
    std::vector<std::uint32_t> small_skewed(100001);
    for (auto& x : small_skewed)
        x = static_cast<std::uint32_t>(rng() % 10 < 7 ? rng() % 100 : rng() % (1u << 28));
    on_one_and_two_threads([&](const ccradix::Options& opt, const std::string& what) {
        check_sort(wide, expected_sort(wide, false), opt, "skewed u64" + what);
        check_argsort(wide, expected_argsort(wide), opt, "skewed u64" + what);
        check_pairs<std::uint64_t, std::uint32_t>(wide, opt, "skewed u64" + what);
        check_sort(dense, expected_sort(dense, false), opt, "dense magnitude u32" + what);
        check_pairs<std::uint32_t, std::uint32_t>(dense, opt, "dense magnitude u32" + what);
        check_sort(small_skewed, expected_sort(small_skewed, false), opt,
                   "small skewed u32" + what);
        check_argsort(small_skewed, expected_argsort(small_skewed), opt, "small skewed u32" + what);
        check_pairs<std::uint32_t, std::uint64_t>(small_skewed, opt, "small skewed u32" + what);
        check_sort(hidden_high, expected_sort(hidden_high, false), opt, "hidden high u32" + what);
        check_sort(hidden_skewed, expected_sort(hidden_skewed, false), opt,
                   "hidden skewed u32" + what);
        check_argsort(hidden_skewed, expected_argsort(hidden_skewed), opt,
                      "hidden skewed u32" + what);
    });
}

void test_dense_range() {
    // Most keys within 2^16 of the sample's smallest: counted, and the rest sorted apart. Keys
    // below the range hide at positions the sample skips (odd ones near the start); a sample
    // that shows only small keys, while nearly all others are large, is caught after the count.
    std::mt19937_64 rng(55);
    const std::size_t n = 1200001;
    std::vector<std::int32_t> i32(n);
    std::vector<std::uint64_t> u64(n);
    std::vector<std::uint32_t> misled(n);
    for (std::size_t i = 0; i < n; ++i) {
        const bool near = rng() % 10 < 7;
        i32[i] = near ? std::int32_t(rng() % 2000) - 1000
                      : std::int32_t(1000000 + rng() % (1u << 30));
        u64[i] = near ? 5000000 + rng() % 60000
                      : (std::uint64_t(1) << 40) + (rng() >> (rng() % 64));
        misled[i] = i % (n / 1024) == 0 ? std::uint32_t(rng() % 100)
                                        : static_cast<std::uint32_t>(rng());
    }
    // Smaller inputs use a smaller range (here 2^12; they come this way when skewed).
    std::vector<std::uint32_t> small(30001);
    for (auto& x : small)
        x = static_cast<std::uint32_t>(rng() % 10 < 7 ? 7 + rng() % 3000 : rng() % (1u << 28));
    for (std::size_t i : {1, 3, 5}) {
        i32[i] = std::numeric_limits<std::int32_t>::min() + std::int32_t(i);
        u64[i] = i;
        small[i] = std::uint32_t(i);
    }
    on_one_and_two_threads([&](const ccradix::Options& opt, const std::string& what) {
        check_sort(i32, expected_sort(i32, false), opt, "dense range i32" + what);
        check_sort(u64, expected_sort(u64, false), opt, "dense range u64" + what);
        check_sort(misled, expected_sort(misled, false), opt, "dense range misled u32" + what);
        check_sort(small, expected_sort(small, false), opt, "dense range small u32" + what);
        check_argsort(i32, expected_argsort(i32), opt, "dense range i32" + what);
    });
}

void test_heavy_keys() {
    // Half the sample or more are values it holds twice or more: those are counted, the others
    // sorted apart and merged in, signed zeros and NaNs among them. A heavy value that loses its
    // hash slot, or one the sample missed, is sorted with the others. A periodic input whose
    // evenly spaced sample shows few values gives up after its first block; one whose heavy
    // values thin out after that block (but not where the sample looks) after the whole count.
    std::mt19937_64 rng(66);
    const std::size_t n = 1200001;
    std::vector<double> f64(n);
    std::vector<float> f32(n);
    std::vector<std::uint64_t> u64(n), periodic(n), thinning(n);
    std::uint64_t values[300];
    for (auto& v : values) v = rng();
    // The sample takes every (n / 1024)th key: a period of 40 such steps shows it 40 values.
    const std::size_t step = n / 1024;
    std::vector<std::uint64_t> cycle(40 * step);
    for (auto& v : cycle) v = rng();
    const double specials[] = {std::numeric_limits<double>::quiet_NaN(), -0.0, 0.0,
                               -std::numeric_limits<double>::infinity(), 1e300, -1e-300};
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t r = rng();
        const bool heavy = r % 10 < 7;
        // Zipf-like: value k with weight about 1/k, and a tail of distinct values.
        const double k = heavy ? std::floor(std::exp(double(r % 1000) / 1000 * std::log(300.0)))
                               : double(rng() % (1u << 30));
        f64[i] = i % 997 == 0 ? specials[i % 6] : k;
        f32[i] = static_cast<float>(-k);
        u64[i] = heavy ? values[r % 300] : rng();
        periodic[i] = cycle[i % cycle.size()];
        thinning[i] = i < (1u << 16) || i % step == 0 ? values[r % 40] : rng();
    }
    on_one_and_two_threads([&](const ccradix::Options& opt, const std::string& what) {
        check_sort(f64, expected_sort(f64, false), opt, "heavy f64" + what);
        check_sort(f64, expected_sort(f64, true), ccradix::Options{opt.threads, true},
                   "heavy f64 descending" + what);
        check_sort(f32, expected_sort(f32, false), opt, "heavy f32" + what);
        check_sort(u64, expected_sort(u64, false), opt, "heavy u64, 300 values" + what);
        check_sort(periodic, expected_sort(periodic, false), opt, "heavy periodic" + what);
        check_sort(thinning, expected_sort(thinning, false), opt, "heavy thinning" + what);
    });
}

void test_aliased_digits() {
    // A shuffled range of integers (ids, integer-valued floats) gives every digit of an in-cache
    // LSD pass the same count, a multiple of 4 KiB of items: those passes leave a gap after
    // each digit's run (see Engine::aliased). Keys, pairs and indices still come out right.
    std::mt19937_64 rng(77);
    std::vector<double> f64(std::size_t(1) << 21);
    std::vector<std::uint32_t> u32(std::size_t(3) << 20);
    for (std::size_t i = 0; i < f64.size(); ++i) f64[i] = static_cast<double>(i);
    for (std::size_t i = 0; i < u32.size(); ++i) u32[i] = static_cast<std::uint32_t>(i << 8);
    std::shuffle(f64.begin(), f64.end(), rng);
    std::shuffle(u32.begin(), u32.end(), rng);
    on_one_and_two_threads([&](const ccradix::Options& opt, const std::string& what) {
        check_sort(f64, expected_sort(f64, false), opt, "range f64" + what);
        check_sort(f64, expected_sort(f64, true), ccradix::Options{opt.threads, true},
                   "range f64 descending" + what);
        check_sort(u32, expected_sort(u32, false), opt, "range u32" + what);
        check_argsort(f64, expected_argsort(f64), opt, "range f64 argsort" + what);
        check_pairs<double, std::uint32_t>(f64, opt, "range f64 pairs" + what);
    });
}

void test_few_distinct() {
    // At most 32 distinct values, each repeated: counted through a hash table of the values
    // (in the cache-sized path too), and a stray value anywhere, even in the last position,
    // sends the sort back to the general path.
    std::mt19937_64 rng(44);
    const double specials[] = {std::numeric_limits<double>::quiet_NaN(), -0.0, 0.0,
                               -std::numeric_limits<double>::infinity(), 1.5, -2.25,
                               std::numeric_limits<double>::max()};
    for (std::size_t n : {std::size_t(5000), std::size_t(1200001)}) {
        for (std::size_t distinct : {std::size_t(2), std::size_t(7), std::size_t(32)}) {
            std::vector<std::uint32_t> u32(n);
            std::vector<std::int64_t> i64(n);
            std::vector<double> f64(n);
            std::uint32_t v32[32];
            std::int64_t v64[32];
            for (auto& v : v32) v = static_cast<std::uint32_t>(rng());
            for (auto& v : v64) v = static_cast<std::int64_t>(rng());
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t pick = rng() % distinct;
                u32[i] = v32[pick];
                i64[i] = v64[pick];
                f64[i] = specials[pick % 7];
            }
            const std::string what =
                " n=" + std::to_string(n) + " distinct=" + std::to_string(distinct);
            for (bool desc : {false, true}) {
                ccradix::Options opt;
                opt.descending = desc;
                const std::string how = what + (desc ? " desc" : "");
                check_sort(u32, expected_sort(u32, desc), opt, "few distinct u32" + how);
                check_sort(i64, expected_sort(i64, desc), opt, "few distinct i64" + how);
                check_sort(f64, expected_sort(f64, desc), opt, "few distinct f64" + how);
            }
            for (std::size_t at : {std::size_t(1), n / 2, n - 1}) {
                std::vector<std::uint32_t> stray = u32;
                stray[at] = static_cast<std::uint32_t>(rng());
                check_sort(stray, expected_sort(stray, false), {},
                           "few distinct u32 and a stray at " + std::to_string(at) + what);
            }
        }
    }
}

void test_unaligned_output() {
    // The output may start anywhere (numpy only promises the item alignment).
    const auto in = make_data<std::uint32_t>(Dist::uniform, 500001, 11);
    std::vector<std::uint32_t> storage(in.size() + 16);
    for (std::size_t offset = 0; offset < 4; ++offset) {
        std::uint32_t* out = storage.data() + offset;
        ccradix::Options opt;
        opt.first_pass = ccradix::FirstPass::streaming;
        ccradix::sort<std::uint32_t>(in.data(), out, in.size(), opt);
        std::vector<std::uint32_t> got(out, out + in.size());
        CHECK(same_bits(got, expected_sort(in, false)), "unaligned output offset %zu", offset);
    }
}

void test_key_transforms() {
    using TrF = ccradix::detail::KeyTraits<float>;
    const float ordered[] = {-std::numeric_limits<float>::infinity(), -1e30f, -1.0f,
                             -std::numeric_limits<float>::denorm_min(), -0.0f, 0.0f,
                             std::numeric_limits<float>::denorm_min(), 1.0f, 1e30f,
                             std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN()};
    for (std::size_t i = 0; i + 1 < sizeof ordered / sizeof ordered[0]; ++i)
        CHECK(TrF::to_key(bits_of(ordered[i])) < TrF::to_key(bits_of(ordered[i + 1])),
              "float key order at %zu", i);
    for (float f : ordered) {
        const auto b = bits_of(f);
        CHECK(TrF::from_key(TrF::to_key(b)) == b, "float round trip %a", double(f));
    }
    using TrI = ccradix::detail::KeyTraits<std::int64_t>;
    CHECK(TrI::to_key(bits_of(std::int64_t(-1))) < TrI::to_key(bits_of(std::int64_t(0))),
          "int64 sign order");
}

void test_scratch_reuse() {
    const auto in = make_data<std::uint64_t>(Dist::uniform, 400000, 12);  // past the cache
    std::vector<std::uint64_t> out(in.size());
    ccradix::sort<std::uint64_t>(in.data(), out.data(), in.size());
    const std::size_t kept = ccradix::release_scratch();
    CHECK(kept >= in.size() * sizeof(std::uint64_t), "scratch kept between calls (%zu)", kept);
    CHECK(ccradix::release_scratch() == 0, "scratch released");
}

void test_reference_sorts() {
    auto a = make_data<std::uint64_t>(Dist::uniform, 100000, 13);
    auto b = a;
    const auto want = expected_sort(a, false);
    ccradix::reference_lsd8(a.data(), a.size());
    ccradix::reference_std_sort(b.data(), b.size());
    CHECK(a == want, "reference_lsd8");
    CHECK(b == want, "reference_std_sort");
}

}  // namespace

int main() {
    test_key_transforms();
    test_type<std::uint32_t>();
    test_type<std::int32_t>();
    test_type<std::uint64_t>();
    test_type<std::int64_t>();
    test_type<float>();
    test_type<double>();
    test_first_pass_variants();
    test_large_paths();
    test_skewed_keys();
    test_few_distinct();
    test_dense_range();
    test_heavy_keys();
    test_aliased_digits();
    test_unaligned_output();
    test_scratch_reuse();
    test_reference_sorts();
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
