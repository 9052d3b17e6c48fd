// ccradix: CC-Radix sort (Jiménez-González, Navarro, Larriba-Pey, Euromicro PDP 2003) for
// 32- and 64-bit integer and floating-point keys, with optional payloads.
//
// Pure C++17; no Python types. See docs/native.md for the design.
//
// Shape of the algorithm:
//   1. a sample of the keys picks the path: few distinct keys are counted through a hash table,
//      keys mostly within a 2^16 range are counted in a table (the rest sorted apart), other
//      inputs get the next steps with a first digit aimed at the bits that vary, by magnitude for
//      skewed keys, or by a table of 16- or 20-bit prefixes for crowded ones (floats);
//   2. one histogram pass over the input for that digit (at most 9 bits, chosen from n);
//   3. one scatter pass from the input into a scratch buffer;
//   4. each bucket that fits in the cache is finished in the cache: LSD passes when few bits
//      remain, otherwise the top digits by LSD and a fix-up of the runs that still share them; a
//      bucket still larger than the cache gets another out-of-cache MSD pass (the CC-Radix rule).
// Keys are mapped to unsigned integers whose order is the wanted order (sign flip for signed
// integers, the usual bit trick for floats), on the way in (first pass) and back on the way out
// (last pass), so the input is read once and the output written once by the transforms.
// Every pass is stable, so the same engine gives a stable argsort and a stable sort_pairs.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define CCRADIX_HAVE_SSE2 1
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ccradix {

// How the first (out-of-cache) scatter pass writes its output. `automatic` picks from the size
// (simple below Tuning::kTrialBytes, measured from it); the others exist so the benchmark and the
// tests can compare them. `measured` times simple against streaming on a few slices and does the
// rest the faster way.
enum class FirstPass { automatic, simple, buffered, streaming, measured };

struct Options {
    unsigned threads = 1;
    bool descending = false;  // the exact reverse of the ascending order
    FirstPass first_pass = FirstPass::automatic;
};

namespace detail {

// ---------------------------------------------------------------------------------------------
// Key transforms: map the bits of a value to an unsigned key with the same order.

template <class T> struct KeyTraits;

template <> struct KeyTraits<std::uint32_t> {
    using U = std::uint32_t;
    static U to_key(U b) { return b; }
    static U from_key(U k) { return k; }
};
template <> struct KeyTraits<std::uint64_t> {
    using U = std::uint64_t;
    static U to_key(U b) { return b; }
    static U from_key(U k) { return k; }
};
template <> struct KeyTraits<std::int32_t> {
    using U = std::uint32_t;
    static U to_key(U b) { return b ^ 0x80000000u; }
    static U from_key(U k) { return k ^ 0x80000000u; }
};
template <> struct KeyTraits<std::int64_t> {
    using U = std::uint64_t;
    static U to_key(U b) { return b ^ 0x8000000000000000ull; }
    static U from_key(U k) { return k ^ 0x8000000000000000ull; }
};

// Floats: negative values have all bits flipped (larger magnitude sorts first), positive values
// get the sign bit set. That orders -inf < ... < -0.0 < +0.0 < ... < +inf. Every NaN becomes the
// canonical quiet NaN first, whose key lies above +inf: NaNs end up last as numpy puts them, and
// the key stays a pure function of the value (the sort only moves keys, never values).
template <class U, U kSign, U kAbsMask, U kInf, U kQuietNaN> struct FloatTraits {
    using Key = U;
    static U to_key(U b) {
        const bool nan = (b & kAbsMask) > kInf;
        b = nan ? kQuietNaN : b;
        const U mask = static_cast<U>(U(0) - (b >> (sizeof(U) * 8 - 1))) | kSign;
        return b ^ mask;
    }
    static U from_key(U k) {
        const U mask = static_cast<U>((k >> (sizeof(U) * 8 - 1)) - 1) | kSign;
        return k ^ mask;
    }
};
template <>
struct KeyTraits<float>
    : FloatTraits<std::uint32_t, 0x80000000u, 0x7FFFFFFFu, 0x7F800000u, 0x7FC00000u> {
    using U = std::uint32_t;
};
template <>
struct KeyTraits<double>
    : FloatTraits<std::uint64_t, 0x8000000000000000ull, 0x7FFFFFFFFFFFFFFFull,
                  0x7FF0000000000000ull, 0x7FF8000000000000ull> {
    using U = std::uint64_t;
};

// ---------------------------------------------------------------------------------------------
// Items moved by the engine: a bare key, or a key with a payload.

template <class U> inline U item_key(U k) { return k; }

template <class U, class V> struct Pair {
    U key;
    V value;
};
template <class U, class V> inline U item_key(const Pair<U, V>& p) { return p.key; }

inline int highest_bit(std::uint64_t x) { return 63 - __builtin_clzll(x); }  // x != 0
inline int lowest_bit(std::uint64_t x) { return __builtin_ctzll(x); }        // x != 0

// ---------------------------------------------------------------------------------------------
// Scratch memory. A sort of 1e8 keys needs hundreds of MB of scratch; allocating it on every
// call costs a page fault per 4 KiB, so one buffer is kept between calls (the largest seen) and
// advised for transparent huge pages, which cuts the faults and TLB misses of the scatter pass.

class ScratchPool {
public:
    struct Block {
        void* ptr = nullptr;
        std::size_t bytes = 0;
    };

    static ScratchPool& instance() {
        static ScratchPool pool;
        return pool;
    }

    Block acquire(std::size_t bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cached_.ptr != nullptr && cached_.bytes >= bytes) {
                Block b = cached_;
                cached_ = Block{};
                return b;
            }
        }
        return allocate(bytes);
    }

    void release(Block b) {
        if (b.ptr == nullptr) return;
        Block to_free;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cached_.ptr == nullptr || cached_.bytes < b.bytes) {
                to_free = cached_;
                cached_ = b;
            } else {
                to_free = b;
            }
        }
        deallocate(to_free);
    }

    // Returns the kept buffer to the system (a long-running service may want its memory back).
    void trim() {
        Block to_free;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            to_free = cached_;
            cached_ = Block{};
        }
        deallocate(to_free);
    }

    std::size_t cached_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return cached_.bytes;
    }

    ~ScratchPool() { deallocate(cached_); }

private:
    static Block allocate(std::size_t bytes) {
        bytes = std::max<std::size_t>(bytes, 64);
#if defined(__linux__)
        constexpr std::size_t kHuge = std::size_t(2) << 20;
        if (bytes >= kHuge) {
            bytes = (bytes + kHuge - 1) / kHuge * kHuge;
            void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
            madvise(p, bytes, MADV_HUGEPAGE);
#endif
            return Block{p, bytes};
        }
#endif
        bytes = (bytes + 63) / 64 * 64;
        void* p = ::operator new(bytes, std::align_val_t(64));
        return Block{p, bytes};
    }

    static void deallocate(Block b) {
        if (b.ptr == nullptr) return;
#if defined(__linux__)
        if (b.bytes >= (std::size_t(2) << 20)) {
            munmap(b.ptr, b.bytes);
            return;
        }
#endif
        ::operator delete(b.ptr, std::align_val_t(64));
    }

    std::mutex mutex_;
    Block cached_;
};

class ScratchLease {
public:
    explicit ScratchLease(std::size_t bytes) : block_(ScratchPool::instance().acquire(bytes)) {}
    ~ScratchLease() { ScratchPool::instance().release(block_); }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    template <class T> T* as() const { return static_cast<T*>(block_.ptr); }

private:
    ScratchPool::Block block_;
};

// ---------------------------------------------------------------------------------------------
// Tuning. Figures chosen by bench/sort_bench.py on a 1 MiB-L2 x86-64 core; see docs/native.md.

#ifndef CCRADIX_TRIAL_BYTES
#define CCRADIX_TRIAL_BYTES (std::size_t(32) << 20)
#endif
#ifndef CCRADIX_BUCKET_BYTES
#define CCRADIX_BUCKET_BYTES (std::size_t(2) << 20)
#endif
#ifndef CCRADIX_TOP_BITS
#define CCRADIX_TOP_BITS 9
#endif
#ifndef CCRADIX_LSD_BITS
#define CCRADIX_LSD_BITS 12
#endif

struct Tuning {
    // A bucket up to this size is finished by LSD passes in the cache (the L2, spilling into
    // the L3). 2 MiB lets 512 buckets hold 1e8 64-bit keys: at 1 MiB they needed another
    // out-of-cache pass each (uint64 1e8: 1.18 s against 0.73 s).
    static constexpr std::size_t kBucketBytes = CCRADIX_BUCKET_BYTES;
    // Widest out-of-cache digit. Up to 512 buckets the plain scatter keeps every destination
    // line in the L1 and costs about 1 ns per key; at 1024 it thrashes (3 ns) and even
    // write-combining buffers cost 2 ns.
    static constexpr int kMaxTopBits = CCRADIX_TOP_BITS;
    static constexpr int kMaxLsdBits = CCRADIX_LSD_BITS;  // widest in-cache LSD digit
    // More varying bits than this many digits: see sort_in_cache. Four passes serve small
    // buckets of 32-bit keys, whose digits are kept narrow (8 bits for 1,000 keys).
    static constexpr int kMaxLsdPasses = 4;
    static constexpr std::size_t kInsertion = 32;           // insertion sort at or below this
    // From this many bytes of items, the automatic first pass times the plain scatter against
    // write-combining with non-temporal stores on a few slices and does the rest with the
    // faster. Which wins depends on the machine: out of the L3, a Zen 4 core scattered plainly
    // in 1.05 ns per key against 1.7 streamed, a Zen 5 core in 2.4 against 1.4. Below the L3
    // (32 MiB on both) the plain scatter won everywhere, and a trial would cost more than it
    // could find.
    static constexpr std::size_t kTrialBytes = CCRADIX_TRIAL_BYTES;
    static constexpr std::size_t kMinParallel = 1u << 16;   // fewer items: one thread
    static constexpr std::size_t kMinSample = 1u << 12;  // fewer items: no sample (see run_engine)
};

// ---------------------------------------------------------------------------------------------
// Buckets by magnitude, for skewed keys. Most keys are small (Zipf-like counts, sizes, gaps): a
// digit at a fixed position puts nearly all of them in bucket 0, level after level. These
// buckets go by magnitude instead, like a float's exponent and top mantissa bits: the bit length
// of the key's varying part (its bits below `hb`) and the `s` bits under its leading one. Keys
// below 2^(s+1) get a bucket each. A larger bucket never holds a smaller key.

template <class U> class Magnitude {
public:
    explicit Magnitude(int hb)
        : low_(hb >= int(sizeof(U) * 8) ? static_cast<U>(~U(0)) : static_cast<U>((U(1) << hb) - 1)),
          hb_(hb) {
        while (s_ + 2 < hb_ && buckets_for(s_ + 1) <= (std::size_t(1) << Tuning::kMaxTopBits)) ++s_;
    }
    std::size_t buckets() const { return buckets_for(s_); }

    std::size_t operator()(U key) const {
        const U r = key & low_;  // below 2^63: only keys whose top bit is shared come here
        // The bit length from a conversion to double: faster than bsr, whose false dependency
        // on its output register serialises the loop. Where the conversion rounds up to the next
        // power of two, the formula still yields the right bucket (the last of the lower group).
        const double d = static_cast<double>(static_cast<std::int64_t>(r));
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        const int e = std::max(int(bits >> 52) - 1023 - s_, 0);  // bits below the s
        return (std::size_t(e) << s_) + std::size_t(r >> e);
    }

    // The keys of bucket b share every bit from this one up.
    int shared_from(std::size_t b) const {
        return b < (std::size_t(2) << s_) ? 0 : int(b >> s_) - 1;
    }

private:
    std::size_t buckets_for(int s) const { return std::size_t(hb_ - s + 1) << s; }

    U low_;
    int hb_;
    int s_ = 1;
};

// ---------------------------------------------------------------------------------------------
// The engine. `Load(i)` yields the item for input position i (keys already transformed);
// `Emit(pos, item)` writes the item at output position pos (transforming the key back).

// Plain loads and stores of keys: the engine's functions for keys already transformed.
template <class U> struct KeysAt {
    const U* keys;
    U operator()(std::size_t i) const { return keys[i]; }
};
template <class U> struct StoreAt {
    U* out;
    void operator()(std::size_t i, U k) const { out[i] = k; }
};

// Sorts n items: `Load(i)` yields the item for input position i, `Emit(pos, item)` writes one
// to the output. `alt`: n items of the output memory, usable as a buffer (or null); `work`: n
// items of scratch (or null: leased from the pool when needed).
template <class Item, class Load, class Emit>
void run_engine(std::size_t n, Load load, Emit emit, Item* alt, const Options& opt,
                Item* work = nullptr);

template <class Item, class Load, class Emit> class Engine {
public:
    using U = decltype(item_key(std::declval<Item>()));
    static constexpr int kKeyBits = int(sizeof(U) * 8);
    static constexpr std::size_t kCacheItems =
        std::max<std::size_t>(Tuning::kBucketBytes / sizeof(Item), 1024);
    static constexpr std::size_t kLineItems = 64 / sizeof(Item);
    static_assert(64 % sizeof(Item) == 0, "items must tile a cache line");

    Engine(std::size_t n, Load load, Emit emit, Item* work, Item* alt, const Options& opt)
        : n_(n), load_(load), emit_(emit), work_(work), alt_(alt), alt_is_output_(alt != nullptr),
          opt_(opt) {}

    // Equal keys everywhere (a constant column, a single flag value): copied out after one
    // read, a vectorised block at a time. Any other input leaves after its first block.
    bool copy_if_all_equal() {
        const U first = item_key(load_(0));
        constexpr std::size_t kBlock = 1024;
        for (std::size_t b = 0; b < n_; b += kBlock) {
            const std::size_t e = std::min(n_, b + kBlock);
            U d = 0;
            for (std::size_t i = b; i < e; ++i) d |= item_key(load_(i)) ^ first;
            if (d != 0) return false;
        }
        if constexpr (std::is_same<Item, U>::value) {
            for (std::size_t i = 0; i < n_; ++i) emit_(i, first);  // a fill: no second read
        } else {
            for (std::size_t i = 0; i < n_; ++i) emit_(i, load_(i));
        }
        return true;
    }

    // About 1,024 keys spread evenly over the input.
    using Sample = std::vector<U>;
    Sample sample_keys() {
        constexpr std::size_t kSample = 1024;
        Sample keys(std::min(n_, kSample));
        const std::size_t step = n_ / keys.size();
        for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = item_key(load_(i * step));
        return keys;
    }

    // Most keys small, yet many distinct (Zipf-like): see Magnitude.
    bool skewed(const Sample& sample) {
        return guess_kind(sample, sample_diff(sample)) == Kind::magnitude;
    }

    // Small inputs skip the out-of-cache pass (measured: up to the in-cache bucket size; beyond
    // it a top pass plus two LSD passes beats three LSD passes). No scratch needed.
    static bool fits_in_cache(std::size_t n) { return n <= kCacheItems; }

    void run_small() {
        Arena arena(n_ * 3);  // the keys and two LSD buffers
        Item* buf = arena.take(n_);
        const U first = item_key(load_(0));
        U diff = 0;
        for (std::size_t i = 0; i < n_; ++i) {
            buf[i] = load_(i);
            diff |= item_key(buf[i]) ^ first;
        }
        if (diff == 0) {
            for (std::size_t i = 0; i < n_; ++i) emit_(i, buf[i]);
            return;
        }
        low_bit_ = lowest_bit(std::uint64_t(diff));
        sort_in_cache(buf, 0, n_, highest_bit(std::uint64_t(diff)) + 1, arena);
    }

    // `work` holds n items; `alt` (may be null: allocated on demand) is used only by buckets that
    // are still larger than the cache after the first pass.
    //
    // Which bits vary, and how the keys spread, are guessed from `sample` (see sample_keys), so
    // that the one counting pass can aim at the varying bits (small integers, floats of one
    // sign). The pass checks the guess (it ORs every key) and is repeated if it was wrong.
    void run(const Sample& sample) {
        const unsigned threads = effective_threads();
        const std::size_t chunk = (n_ + threads - 1) / threads;
        const U first = item_key(load_(0));
        if (sort_dense_range(sample) || sort_heavy_keys(sample)) return;
        U guess = sample_diff(sample);
        std::vector<std::vector<std::size_t>> hist(threads);
        for (;;) {
            const int hb = varying_top(guess);
            const Digit top = first_digit(hb);
            const Magnitude<U> mag(hb);
            const Kind kind = guess_kind(sample, guess);
            const Digit prefix = prefix_digit(hb);
            const U diff =
                kind == Kind::magnitude
                    ? count_pass(threads, chunk, first, mag, mag.buckets(), hist)
                : kind == Kind::prefix
                    ? count_pass(threads, chunk, first, prefix.of(), prefix.buckets(), hist)
                    : count_pass(threads, chunk, first, top.of(), top.buckets(), hist);
            if (hb < kKeyBits && (diff >> hb) != 0) {
                guess = diff;  // more bits vary than the sample showed
                continue;
            }
            low_bit_ = lowest_bit(std::uint64_t(diff));  // diff != 0: not all keys are equal
            if (kind == Kind::magnitude)
                scatter_by_magnitude(threads, chunk, mag, hist);
            else if (kind == Kind::prefix)
                scatter_by_prefix(threads, chunk, first, hb, hist);
            else
                scatter_by_digit(threads, chunk, first, hb, top, hist);
            return;
        }
    }

private:
    // ---- helpers ------------------------------------------------------------------------------

    // The bits in which the sample's keys differ from the first key.
    U sample_diff(const Sample& sample) {
        const U first = item_key(load_(0));
        U diff = 0;
        for (U k : sample) diff |= k ^ first;
        return diff;
    }

    // The digit of the first pass: `bits` wide at `shift`.
    struct Digit {
        int shift, bits;
        std::size_t buckets() const { return std::size_t(1) << bits; }
        auto of() const { return digit(shift, static_cast<U>((U(1) << bits) - 1)); }
    };

    // The top digit_bits(n) bits of the key, or of its varying part (below `hb`).
    Digit first_digit(int hb) const {
        const int top_bits = top_digit_bits(n_);
        if (hb >= kKeyBits) return {kKeyBits - top_bits, top_bits};
        const int bits = hb <= Tuning::kMaxTopBits ? hb : std::max(top_bits, 8);
        return {hb - bits, bits};
    }


    // How the first pass splits the keys (see run).
    enum class Kind { digit, magnitude, prefix };

    // The highest bit set in `diff` + 1 (all bits when diff is 0: nothing known).
    static int varying_top(U diff) {
        return diff == 0 ? kKeyBits : highest_bit(std::uint64_t(diff)) + 1;
    }

    // From the sample's spread over the first digit, given the bits `guess` in which keys are
    // known to differ: magnitude when most keys are small yet vary in many bits; the prefix
    // table when the digit is crowded (the sign and exponent bits of floats take few values)
    // and LSD passes could not finish a crowded bucket soon.
    Kind guess_kind(const Sample& sample, U guess) const {
        if (sample.empty()) return Kind::digit;
        const int hb = varying_top(guess);
        const Digit top = first_digit(hb);
        std::vector<std::size_t> count(top.buckets(), 0);
        for (U k : sample) ++count[top.of()(k)];
        const std::size_t largest = *std::max_element(count.begin(), count.end());
        if (hb < kKeyBits && hb > Tuning::kMaxTopBits && count[0] > sample.size() / 2)
            return Kind::magnitude;
        const int width = hb - (guess == 0 ? 0 : lowest_bit(std::uint64_t(guess)));
        // Crowded: the largest bucket would be twice the in-cache size, and the sample says so
        // clearly. From about 8e7 uniform keys, the largest of 512 buckets (six to ten of 1,024
        // sampled keys, by chance alone) would otherwise pass for crowded: uniform uint64 1e8
        // took the prefix table's lookups, 8.3 instead of 5.0 ns per key.
        const bool crowded = largest * n_ / sample.size() > 2 * kCacheItems &&
                             largest >= std::max<std::size_t>(16, 8 * sample.size() / count.size());
        if (crowded && (hb == kKeyBits || width > 32)) return Kind::prefix;
        return Kind::digit;
    }

    // One read: per-thread counts of bucket_of(key) into `hist` (nb buckets each); returns the
    // OR of every key ^ first.
    template <class BucketOf>
    U count_pass(unsigned threads, std::size_t chunk, U first, BucketOf bucket_of, std::size_t nb,
                 std::vector<std::vector<std::size_t>>& hist) {
        std::vector<U> diff(threads, 0);
        parallel(threads, [&](unsigned t) {
            const std::size_t lo = std::min(n_, t * chunk), hi = std::min(n_, lo + chunk);
            hist[t].assign(nb, 0);
            count_digits(lo, hi, [this](std::size_t i) { return item_key(load_(i)); }, bucket_of,
                         nb, hist[t].data(), first, diff[t]);
        });
        U all = 0;
        for (U d : diff) all |= d;
        return all;
    }

    // The first pass by the digit `top`, whose counts are in `hist`; `hb`: the highest varying
    // bit + 1.
    void scatter_by_digit(unsigned threads, std::size_t chunk, U first, int hb, const Digit& top,
                          std::vector<std::vector<std::size_t>>& hist) {
        if (fill_if_one_key_per_bucket(first, top.shift, top.bits, hist)) return;
        const std::size_t largest = largest_bucket(hist);
        if (hb < kKeyBits && hb > Tuning::kMaxTopBits && largest > n_ / 4 &&
            bucket_count(hist, 0) > n_ / 2) {
            // Most keys are small, yet many distinct (Zipf-like), and the sample missed it:
            // every further MSD level would be another pass over nearly all of them.
            const Magnitude<U> mag(hb);
            count_pass(threads, chunk, first, mag, mag.buckets(), hist);
            scatter_by_magnitude(threads, chunk, mag, hist);
        } else if (largest > kCacheItems &&
                   (hb == kKeyBits || hb - low_bit_ > 32 || largest > n_ / 4)) {
            // Crowded, and the sample missed it: the table of prefixes splits the crowd.
            const Digit prefix = prefix_digit(hb);
            count_pass(threads, chunk, first, prefix.of(), prefix.buckets(), hist);
            scatter_by_prefix(threads, chunk, first, hb, hist);
        } else {
            scatter_and_finish(threads, chunk, top.shift, top.bits, hist);
        }
    }

    static std::size_t bucket_count(const std::vector<std::vector<std::size_t>>& hist,
                                    std::size_t b) {
        std::size_t c = 0;
        for (const auto& h : hist) c += h[b];
        return c;
    }

    static std::size_t largest_bucket(const std::vector<std::vector<std::size_t>>& hist) {
        std::size_t largest = 0;
        for (std::size_t b = 0; b < hist[0].size(); ++b)
            largest = std::max(largest, bucket_count(hist, b));
        return largest;
    }

    unsigned effective_threads() const {
        unsigned t = std::max(1u, opt_.threads);
        if (n_ < Tuning::kMinParallel) t = 1;
        return t;
    }

    static int top_digit_bits(std::size_t n) {
        // Enough buckets that an average bucket is half the in-cache size ...
        const std::size_t target = std::max<std::size_t>(kCacheItems / 2, 1);
        int bits = 1;
        while (bits < Tuning::kMaxTopBits && (n >> bits) > target) ++bits;
        // ... and, for 32-bit keys, few enough bits left for two in-cache LSD passes, as long
        // as the buckets stay large enough to pay for their counters.
        const int wanted = kKeyBits - 2 * Tuning::kMaxLsdBits;
        if (kKeyBits <= 32 && bits < wanted && (n >> wanted) >= 2048) bits = wanted;
        return std::max(bits, 4);
    }

    template <class F> static void parallel(unsigned threads, F&& f) {
        if (threads <= 1) {
            f(0u);
            return;
        }
        std::vector<std::thread> pool;
        pool.reserve(threads - 1);
        for (unsigned t = 1; t < threads; ++t) pool.emplace_back([&f, t] { f(t); });
        f(0u);
        for (auto& th : pool) th.join();
    }

    // A bump allocator for the in-cache buffers of one worker. They are reused bucket after
    // bucket (and call after call: the block is per thread), so they stay in the cache and cost
    // no page faults.
    class Arena {
    public:
        // Room beyond `capacity` for the gaps of two padded LSD buffers (see lsd).
        explicit Arena(std::size_t capacity)
            : cap_(capacity + 2 * kPadItems * (std::size_t(1) << Tuning::kMaxLsdBits)),
              buf_(backing(cap_)) {}
        Item* take(std::size_t count) {
            if (used_ + count > cap_) {
                // Rare (deep in-cache recursion): a separate block, kept until the arena dies.
                extra_.emplace_back(new Item[count]);
                return extra_.back().get();
            }
            Item* p = buf_ + used_;
            used_ += count;
            return p;
        }
        std::size_t mark() const { return used_; }
        void reset(std::size_t mark) { used_ = mark; }

    private:
        static Item* backing(std::size_t capacity) {
            thread_local std::unique_ptr<Item[]> block;
            thread_local std::size_t block_capacity = 0;
            if (block_capacity < capacity) {
                block.reset(new Item[capacity]);
                block_capacity = capacity;
            }
            return block.get();
        }

        std::size_t cap_;
        Item* buf_;
        std::size_t used_ = 0;
        std::vector<std::unique_ptr<Item[]>> extra_;
    };

    // The digit of a key at `shift`, `mask` wide: the bucket function of a plain radix pass.
    static auto digit(int shift, U mask) {
        return [shift, mask](U k) { return std::size_t((k >> shift) & mask); };
    }

    // Turns per-thread bucket counts into write positions: bucket-major, then thread order
    // inside a bucket (stable). Returns where each bucket starts, and n at the end.
    static std::vector<std::size_t> layout(std::vector<std::vector<std::size_t>>& counts) {
        const std::size_t buckets = counts[0].size();
        std::vector<std::size_t> bucket_start(buckets + 1);
        std::size_t sum = 0;
        for (std::size_t b = 0; b < buckets; ++b) {
            bucket_start[b] = sum;
            for (auto& c : counts) sum += std::exchange(c[b], sum);
        }
        bucket_start[buckets] = sum;
        return bucket_start;
    }

    // Moves input items [lo, hi) into work_ at pos[bucket_of(key)]++.
    template <class BucketOf>
    void scatter(std::size_t lo, std::size_t hi, BucketOf bucket_of, std::size_t* pos) {
        Item* out = work_;
        std::size_t i = lo;
        for (; i + 4 <= hi; i += 4) {  // unrolled: four independent loads ahead of the stores
            const Item i0 = load_(i), i1 = load_(i + 1), i2 = load_(i + 2), i3 = load_(i + 3);
            out[pos[bucket_of(item_key(i0))]++] = i0;
            out[pos[bucket_of(item_key(i1))]++] = i1;
            out[pos[bucket_of(item_key(i2))]++] = i2;
            out[pos[bucket_of(item_key(i3))]++] = i3;
        }
        for (; i < hi; ++i) {
            const Item it = load_(i);
            out[pos[bucket_of(item_key(it))]++] = it;
        }
    }

    // Counts digit values of keys [lo, hi) into `out` (size_t, nb entries, added to) and ORs
    // `key ^ first` into `diff`. Four counter tables: with many equal keys a single table makes
    // every increment wait for the previous one to the same counter. Wide digits (16-bit
    // prefixes) get one table, which stays in the L2.
    template <class KeyAt, class DigitOf>
    static void count_digits(std::size_t lo, std::size_t hi, KeyAt key_at, DigitOf digit_of,
                             std::size_t nb, std::size_t* out, U first, U& diff) {
        const std::size_t stride = nb <= 4096 ? nb : 0;
        std::vector<std::uint32_t> tables(nb + 3 * stride, 0);
        std::uint32_t* t0 = tables.data();
        std::uint32_t* t1 = t0 + stride;
        std::uint32_t* t2 = t1 + stride;
        std::uint32_t* t3 = t2 + stride;
        U d = 0;
        U lanes[4] = {0, 0, 0, 0};
        // Blocks small enough to stay in the L1 between two loops: the OR of `key ^ first` runs
        // as a loop of its own, which the compiler vectorises, instead of costing two scalar
        // operations per key in the counting loop.
        constexpr std::size_t kBlock = 4096;
        constexpr std::size_t kFold = std::size_t(1) << 30;  // keeps the 32-bit tables exact
        for (std::size_t f = lo; f < hi; f += kFold) {
            const std::size_t fe = std::min(hi, f + kFold);
            for (std::size_t b = f; b < fe; b += kBlock) {
                const std::size_t e = std::min(fe, b + kBlock);
                std::size_t i = b;
                for (; i + 4 <= e; i += 4)
                    for (std::size_t l = 0; l < 4; ++l) lanes[l] |= key_at(i + l) ^ first;
                for (; i < e; ++i) d |= key_at(i) ^ first;
                for (i = b; i + 4 <= e; i += 4) {
                    const U k0 = key_at(i), k1 = key_at(i + 1), k2 = key_at(i + 2),
                            k3 = key_at(i + 3);
                    ++t0[digit_of(k0)];
                    ++t1[digit_of(k1)];
                    ++t2[digit_of(k2)];
                    ++t3[digit_of(k3)];
                }
                for (; i < e; ++i) ++t0[digit_of(key_at(i))];
            }
            for (std::size_t j = 0; j < tables.size(); ++j) {
                out[j % nb] += tables[j];
                tables[j] = 0;
            }
        }
        d |= lanes[0] | lanes[1] | lanes[2] | lanes[3];
        diff |= d;
    }

    // tally(i, table) for i in [lo, hi), the four tables of `count` in turn: with a count table
    // per lane, a run of equal keys does not make each increment wait for the previous one.
    template <class Counts, class Tally>
    static void tally_in_four_lanes(std::size_t lo, std::size_t hi, Counts& count, Tally tally) {
        std::size_t i = lo;
        for (; i + 4 <= hi; i += 4) {
            tally(i, count[0]);
            tally(i + 1, count[1]);
            tally(i + 2, count[2]);
            tally(i + 3, count[3]);
        }
        for (; i < hi; ++i) tally(i, count[0]);
    }

    // ---- few distinct keys --------------------------------------------------------------------

    // Keys without payload, and the sample shows at most 32 distinct values, each repeated (a
    // flag or category column): every key is looked up in a collision-free hash table of those
    // values and counted, and the values in order, repeated by their counts, are the output.
    // A key not in the table ends the attempt; the table is checked a block at a time, so
    // other inputs leave after one block.
public:
    bool fill_if_few_distinct(const Sample& sample) {
        if constexpr (!std::is_same<Item, U>::value) {
            return false;
        } else {
            constexpr std::size_t kMaxDistinct = 32;
            std::vector<U> values;
            for (std::size_t i = 0; i < sample.size(); i += 4) {  // 256 of the keys suffice
                if (std::find(values.begin(), values.end(), sample[i]) != values.end()) continue;
                if (values.size() == kMaxDistinct) return false;
                values.push_back(sample[i]);
            }
            if (values.size() * 4 > (sample.size() + 3) / 4) return false;  // few repeats
            std::sort(values.begin(), values.end());
            // 4096 one-byte slots (in the L1) make a multiplier without collisions easy to find.
            constexpr int kSlotBits = 12;
            constexpr std::uint64_t kMultipliers[] = {0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full,
                                                      0x165667B19E3779F9ull, 0xD6E8FEB86659FD93ull,
                                                      0xFF51AFD7ED558CCDull, 0xC4CEB9FE1A85EC53ull};
            std::vector<std::uint8_t> slot_of(std::size_t(1) << kSlotBits);
            std::uint64_t mult = 0;
            for (std::uint64_t m : kMultipliers) {
                std::fill(slot_of.begin(), slot_of.end(), std::uint8_t(kMaxDistinct));
                bool clash = false;
                for (std::size_t v = 0; v < values.size() && !clash; ++v) {
                    const std::uint64_t hash = std::uint64_t(values[v]) * m;
                    std::uint8_t& slot = slot_of[hash >> (64 - kSlotBits)];
                    clash = slot != kMaxDistinct;
                    slot = static_cast<std::uint8_t>(v);
                }
                if (!clash) {
                    mult = m;
                    break;
                }
            }
            if (mult == 0) return false;
            // An empty slot leads to values[0], which the key cannot equal (it would have hashed
            // to the slot of values[0]): the comparison fails.
            U value_at[kMaxDistinct + 1];
            std::copy(values.begin(), values.end(), value_at);
            std::fill(value_at + values.size(), value_at + kMaxDistinct + 1, values[0]);
            std::size_t count[4][kMaxDistinct + 1] = {};
            constexpr std::size_t kBlock = 4096;
            const std::uint8_t* slots = slot_of.data();
            for (std::size_t lo = 0; lo < n_; lo += kBlock) {
                const std::size_t hi = std::min(n_, lo + kBlock);
                U differ = 0;
                auto tally = [&](std::size_t i, std::size_t* c) {
                    const U k = load_(i);
                    const std::uint8_t v = slots[(std::uint64_t(k) * mult) >> (64 - kSlotBits)];
                    differ |= value_at[v] ^ k;
                    ++c[v];
                };
                tally_in_four_lanes(lo, hi, count, tally);
                if (differ != 0) return false;
            }
            emit_runs(0, values.size(), [&](std::size_t v) { return values[v]; },
                      [&](std::size_t v) {
                          return count[0][v] + count[1][v] + count[2][v] + count[3][v];
                      });
            return true;
        }
    }

private:
    // Keys without payload, most of them (by the sample) within 2^16 of the sample's smallest
    // (counts, small ids, Zipf-like keys, short integer ranges): those are counted in a table
    // and written as runs, and only the others are moved: gathered into the scratch buffer
    // (below the range at its start, above it at its end) and sorted apart, into their places
    // before and after the runs.
    bool sort_dense_range(const Sample& sample) {
        if constexpr (!std::is_same<Item, U>::value) {
            return false;
        } else {
            // A range of at most 2^16 keys (a 256 KiB table, in the L2), and at most n/4: the
            // table is cleared and scanned whatever the input holds.
            int range_bits = 12;
            while (range_bits < 16 && (std::size_t(8) << range_bits) <= n_) ++range_bits;
            const std::size_t range = std::size_t(1) << range_bits;
            const U base = *std::min_element(sample.begin(), sample.end());
            std::size_t inside = 0;
            for (U k : sample) inside += U(k - base) < range;
            if (n_ < 4 * range || n_ > UINT32_MAX || inside * 2 < sample.size() ||
                alt_ == nullptr)
                return false;
            std::vector<std::uint32_t> count(range + 1, 0);  // + 1: the keys outside
            std::size_t below = 0, above = 0;
            Item* top = work_ + n_ - 1;
            for (std::size_t i = 0; i < n_; ++i) {
                const U k = load_(i);
                const U d = static_cast<U>(k - base);
                const bool in = d < range;
                ++count[in ? std::size_t(d) : range];
                // Both stores always happen; only the right one is kept (no branch to miss).
                work_[below] = k;
                below += k < base;
                *(top - above) = k;
                above += !in && k >= base;
            }
            if ((below + above) * 2 > n_) return false;  // the sample misled; nothing written
            const std::size_t runs = n_ - below - above;
            // Sorted into the output memory (as keys: one engine type serves every caller),
            // then mapped back to values in place.
            Item* spare = work_ + below;  // n_ - below - above >= below, above: their scratch
            auto sort_apart = [&](const Item* keys, std::size_t m, std::size_t at) {
                run_engine<Item>(m, KeysAt<U>{keys}, StoreAt<U>{alt_ + at}, alt_ + at, opt_, spare);
                for (std::size_t i = at; i < at + m; ++i) emit_(i, alt_[i]);
            };
            sort_apart(work_, below, 0);
            sort_apart(top - above + 1, above, below + runs);
            emit_runs(below, range, [base](std::size_t d) { return static_cast<U>(base + d); },
                      [&count](std::size_t d) { return std::size_t(count[d]); });
            return true;
        }
    }

    // Keys without payload, and half the sample or more are values it holds twice or more
    // (Zipf-like floats, repeated ids): those heavy values are counted through a hash table and
    // written as runs, and only the other keys are moved: gathered into the scratch buffer,
    // sorted apart into the end of the output memory, and merged with the runs from the front.
    // Counting spares the heavy keys the scatter, where every key of one value waits for the
    // previous one's update of their shared position counter.
    bool sort_heavy_keys(const Sample& sample) {
        if constexpr (!std::is_same<Item, U>::value) {
            return false;
        } else {
            constexpr std::size_t kNone = 255;  // slot value: no heavy key hashes here
            if (sample.size() < 256 || alt_ == nullptr || n_ > UINT32_MAX) return false;
            Sample sorted(sample);
            std::sort(sorted.begin(), sorted.end());
            std::vector<U> heavy;
            std::size_t covered = 0;
            for (std::size_t i = 0, j; i < sorted.size(); i = j) {
                for (j = i + 1; j < sorted.size() && sorted[j] == sorted[i];) ++j;
                if (j - i >= 2 && heavy.size() < kNone) {
                    heavy.push_back(sorted[i]);
                    covered += j - i;
                }
            }
            if (covered * 2 < sorted.size()) return false;
            // 2^14 one-byte slots (16 KiB, in the L1). A heavy value whose slot is taken is left
            // out: its keys are sorted with the others.
            constexpr int kSlotBits = 14;
            constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15ull;
            auto slot = [](U k) { return (std::uint64_t(k) * kMultiplier) >> (64 - kSlotBits); };
            std::vector<std::uint8_t> slot_of(std::size_t(1) << kSlotBits, std::uint8_t(kNone));
            std::vector<U> kept;  // in order, as `heavy`
            for (U h : heavy) {
                std::uint8_t& s = slot_of[slot(h)];
                if (s != kNone) continue;
                s = static_cast<std::uint8_t>(kept.size());
                kept.push_back(h);
            }
            // An empty slot leads to kept[0], which the key cannot equal (it hashes elsewhere).
            U value_at[kNone + 1];
            std::fill(value_at, value_at + kNone + 1, kept[0]);
            std::copy(kept.begin(), kept.end(), value_at);
            std::size_t count[4][kNone + 1] = {};  // kNone: others
            std::size_t others = 0;
            const std::uint8_t* slots = slot_of.data();
            auto tally = [&](std::size_t i, std::size_t* c) {
                const U k = load_(i);
                const std::uint8_t v = slots[slot(k)];
                const bool is_heavy = value_at[v] == k;
                ++c[is_heavy ? v : kNone];
                work_[others] = k;  // always stored, kept only if not heavy (no branch to miss)
                others += !is_heavy;
            };
            // An evenly spaced sample can mislead (a periodic input shows few values): where
            // fewer than a quarter of the first block's keys are heavy, the attempt ends there.
            const std::size_t first_block = std::min<std::size_t>(n_, 1u << 16);
            tally_in_four_lanes(0, first_block, count, tally);
            if (others * 4 > first_block * 3) return false;  // nothing written yet
            tally_in_four_lanes(first_block, n_, count, tally);
            if (others * 2 > n_) return false;  // the sample misled; nothing written
            // Sorted into the end of the output memory (the rest of the scratch as its scratch),
            // then merged forward: a write never overtakes the reads (heavy keys fill the gap).
            U* rest = alt_ + (n_ - others);
            run_engine<Item>(others, KeysAt<U>{work_}, StoreAt<U>{rest}, rest, opt_,
                             work_ + others);
            std::size_t at = 0, j = 0;
            for (std::size_t v = 0; v < kept.size(); ++v) {
                const U h = kept[v];
                const std::size_t below =
                    std::size_t(std::lower_bound(rest + j, rest + others, h) - rest);
                for (; j < below; ++j) emit_(at++, rest[j]);
                const std::size_t c = count[0][v] + count[1][v] + count[2][v] + count[3][v];
                for (const std::size_t end = at + c; at < end; ++at) emit_(at, h);
            }
            for (; j < others; ++j) emit_(at++, rest[j]);
            return true;
        }
    }

    // Keys without payload, and every used bucket of the top digit holds a single key value
    // (a flag or category column; small integers when the digit spans every varying bit): the
    // histogram already is the sorted output, written as runs. When bits below the digit vary,
    // one read checks that, giving up at the first key that differs from its bucket's, and only
    // if at most 64 buckets are used.
    // `hist`: per-thread counts of the digit's values.
    bool fill_if_one_key_per_bucket(U first, int shift, int bits,
                                    const std::vector<std::vector<std::size_t>>& hist) {
        if constexpr (!std::is_same<Item, U>::value) {
            return false;
        } else {
            const std::size_t nb = std::size_t(1) << bits;
            const U mask = static_cast<U>((U(1) << bits) - 1);
            std::vector<std::size_t> count(nb, 0);
            std::size_t used = 0;
            for (std::size_t b = 0; b < nb; ++b) {
                for (const auto& h : hist) count[b] += h[b];
                used += count[b] != 0;
            }
            if (used > 64 && shift > low_bit_) return false;
            std::vector<U> key_of(nb);
            if (shift <= low_bit_) {  // the bits outside the digit are the same in every key
                const U rest = static_cast<U>(first & ~static_cast<U>(mask << shift));
                for (std::size_t b = 0; b < nb; ++b) key_of[b] = static_cast<U>(rest | (U(b) << shift));
            } else {
                // A block at a time: the first key of each bucket not seen before becomes its
                // key, then a branch-free comparison of every key with its bucket's. Any other
                // input leaves after its first block.
                std::size_t found = 0;
                std::vector<char> seen(nb, 0);
                constexpr std::size_t kBlock = 4096;
                for (std::size_t lo = 0; lo < n_; lo += kBlock) {
                    const std::size_t hi = std::min(n_, lo + kBlock);
                    for (std::size_t i = lo; i < hi && found < used; ++i) {
                        const U k = load_(i);
                        const std::size_t b = (k >> shift) & mask;
                        if (!seen[b]) {
                            seen[b] = 1;
                            key_of[b] = k;
                            ++found;
                        }
                    }
                    U differ = 0;
                    for (std::size_t i = lo; i < hi; ++i) {
                        const U k = load_(i);
                        differ |= key_of[(k >> shift) & mask] ^ k;
                    }
                    if (differ != 0) return false;
                }
            }
            emit_runs(0, nb, [&key_of](std::size_t b) { return key_of[b]; },
                      [&count](std::size_t b) { return count[b]; });
            return true;
        }
    }

    // ---- first pass by a table of prefixes (crowded top digit) ---------------------------------

    // A few values of the top digit hold most keys (floats: two signs and a few exponents;
    // skewed keys with too many varying bits for LSD). A histogram of the 16 bits below `hb`
    // (the highest varying bit + 1) groups consecutive prefixes into at most 2^kMaxTopBits
    // buckets of about half the in-cache size (or more, where that would take more buckets),
    // and the scatter looks each key's bucket up in that table. A bucket of one prefix may
    // still be larger than the cache; it gets another MSD pass like any other. For 64-bit keys
    // from 2^26 on, the prefixes are 20 bits (tables of a few MiB, small beside the keys): 16
    // bits of a double leave 4 for the mantissa, and 1e8 normal doubles put 88 % of the keys in
    // 16-bit prefixes larger than the cache, none in 20-bit ones (1e8: 12-14 against 18-20 ns
    // per key). A float's 16 bits keep 7 mantissa bits; 20 would spread its lookups beyond the
    // L1.
    Digit prefix_digit(int hb) const {
        const bool wide = sizeof(U) == 8 && n_ >= (std::size_t(1) << 26);
        const int bits = wide ? 20 : 16;
        const int shift = std::max(hb - bits, 0);
        return {shift, std::min(hb, bits)};
    }

    // `count`: per-thread counts of prefix_digit(hb), as count_pass leaves them.
    void scatter_by_prefix(unsigned threads, std::size_t chunk, U first, int hb,
                           std::vector<std::vector<std::size_t>>& count) {
        const Digit digit = prefix_digit(hb);
        const std::size_t prefixes = digit.buckets();
        // A few distinct keys of random bits: the prefixes tell them apart.
        if (fill_if_one_key_per_bucket(first, digit.shift, digit.bits, count)) return;
        std::vector<std::size_t> total(prefixes, 0);
        for (const auto& c : count)
            for (std::size_t p = 0; p < prefixes; ++p) total[p] += c[p];
        // The table: prefixes in order, a new bucket whenever the current one would overflow
        // `target`, which grows until the buckets are few enough for one pass.
        constexpr std::size_t kMaxBuckets = std::size_t(1) << Tuning::kMaxTopBits;
        std::vector<std::uint16_t> table(prefixes);
        std::vector<std::size_t> first_prefix;
        for (std::size_t target = std::max(kCacheItems / 2, n_ / kMaxBuckets);;
             target += target / 8) {
            first_prefix.assign(1, 0);
            std::size_t fill = 0;
            for (std::size_t p = 0; p < prefixes; ++p) {
                if (fill != 0 && fill + total[p] > target) {
                    first_prefix.push_back(p);
                    fill = 0;
                }
                table[p] = static_cast<std::uint16_t>(first_prefix.size() - 1);
                fill += total[p];
            }
            if (first_prefix.size() <= kMaxBuckets) break;
        }
        const std::size_t buckets = first_prefix.size();
        first_prefix.push_back(prefixes);
        std::vector<std::vector<std::size_t>> pos(threads, std::vector<std::size_t>(buckets, 0));
        for (unsigned t = 0; t < threads; ++t)
            for (std::size_t p = 0; p < prefixes; ++p) pos[t][table[p]] += count[t][p];
        const std::uint16_t* bucket_of = table.data();
        const auto prefix_of = digit.of();
        const std::vector<std::size_t> bucket_start = scatter_all(
            threads, chunk, [=](U k) { return std::size_t(bucket_of[prefix_of(k)]); }, pos);
        // A bucket's keys share the bits above the highest one in which its first and last
        // prefixes differ.
        const int shift = digit.shift;
        finish_buckets(threads, bucket_start, [&first_prefix, shift](std::size_t b) {
            const std::size_t lo = first_prefix[b], hi = first_prefix[b + 1] - 1;
            return lo == hi ? shift : shift + highest_bit(std::uint64_t(lo ^ hi)) + 1;
        });
    }

    // ---- first pass by magnitude (skewed keys) --------------------------------------------------

    // `count`: per-thread counts of mag's buckets, as count_pass leaves them.
    void scatter_by_magnitude(unsigned threads, std::size_t chunk, const Magnitude<U>& mag,
                              std::vector<std::vector<std::size_t>>& count) {
        const std::vector<std::size_t> bucket_start = scatter_all(threads, chunk, mag, count);
        finish_buckets(threads, bucket_start, [&mag](std::size_t b) { return mag.shared_from(b); });
    }

    // ---- first pass ---------------------------------------------------------------------------

    FirstPass choose_first_pass() const {
        if (opt_.first_pass != FirstPass::automatic) return opt_.first_pass;
        return n_ * sizeof(Item) >= Tuning::kTrialBytes ? FirstPass::measured : FirstPass::simple;
    }

    void scatter_and_finish(unsigned threads, std::size_t chunk, int shift, int bits,
                            std::vector<std::vector<std::size_t>>& hist) {
        const auto digit_of = digit(shift, static_cast<U>((U(1) << bits) - 1));
        const std::vector<std::size_t> bucket_start = scatter_all(threads, chunk, digit_of, hist);
        finish_buckets(threads, bucket_start, [shift](std::size_t) { return shift; });
    }

    // The first pass: every item from the input to its bucket in work_, each thread its chunk.
    // `pos`: per-thread counts of bucket_of's values, as count_pass leaves them. Returns where
    // each bucket starts, and n at the end.
    template <class BucketOf>
    std::vector<std::size_t> scatter_all(unsigned threads, std::size_t chunk, BucketOf bucket_of,
                                         std::vector<std::vector<std::size_t>>& pos) {
        const std::vector<std::size_t> bucket_start = layout(pos);
        const FirstPass mode = choose_first_pass();
        parallel(threads, [&](unsigned t) {
            const std::size_t lo = std::min(n_, t * chunk), hi = std::min(n_, lo + chunk);
            scatter_by(mode, lo, hi, bucket_of, pos[t]);
        });
        return bucket_start;
    }

    // Items [lo, hi) to their buckets (pos.size() of them), the `mode` way (not automatic).
    template <class BucketOf>
    void scatter_by(FirstPass mode, std::size_t lo, std::size_t hi, BucketOf bucket_of,
                    std::vector<std::size_t>& pos) {
        if (mode == FirstPass::simple)
            scatter(lo, hi, bucket_of, pos.data());
        else if (mode == FirstPass::buffered)
            scatter_buffered<false>(lo, hi, bucket_of, pos);
        else if (mode == FirstPass::streaming)
            scatter_buffered<true>(lo, hi, bucket_of, pos);
        else
            scatter_measured(lo, hi, bucket_of, pos);
    }

    // The plain and the streaming scatter take turns on four slices of 1/32 of the items each;
    // the faster (by its quicker slice, against interruptions) does the rest. The slices do
    // the pass's own work, so a wrong guess costs at most the difference on 1/16 of it.
    template <class BucketOf>
    void scatter_measured(std::size_t lo, std::size_t hi, BucketOf bucket_of,
                          std::vector<std::size_t>& pos) {
        using Clock = std::chrono::steady_clock;
        const std::size_t slice = (hi - lo) / 32;
        Clock::duration best[2] = {Clock::duration::max(), Clock::duration::max()};
        const FirstPass modes[2] = {FirstPass::simple, FirstPass::streaming};
        std::size_t i = lo;
        for (int turn = 0; turn < 4; ++turn, i += slice) {
            const auto start = Clock::now();
            scatter_by(modes[turn % 2], i, i + slice, bucket_of, pos);
            best[turn % 2] = std::min(best[turn % 2], Clock::now() - start);
        }
        scatter_by(modes[best[1] < best[0] ? 1 : 0], i, hi, bucket_of, pos);
    }

    // Software write-combining: items for a bucket gather in a cache-line buffer that is written
    // out whole. With `kStream`, full lines go out by non-temporal stores, which skip the
    // read-for-ownership of the destination line (a third of the pass's memory traffic).
    template <bool kStream, class BucketOf>
    void scatter_buffered(std::size_t lo, std::size_t hi, BucketOf bucket_of,
                          std::vector<std::size_t>& pos) {
        struct alignas(64) Line {
            Item items[kLineItems];
        };
        const std::size_t buckets = pos.size();
        std::unique_ptr<Line[]> lines(new Line[buckets]);
        std::vector<std::size_t> start(pos);  // first position of this thread in each bucket
        // Line boundaries are measured from the address, so full lines are 64-byte aligned.
        const std::size_t skew =
            (reinterpret_cast<std::uintptr_t>(work_) % 64) / sizeof(Item);
        std::vector<std::size_t> vpos(buckets);  // virtual (line-aligned) positions
        for (std::size_t b = 0; b < buckets; ++b) vpos[b] = pos[b] + skew;
        Item* base = work_ - skew;  // only indexed at >= skew
        std::size_t* vp = vpos.data();
        Line* ln = lines.get();
        for (std::size_t i = lo; i < hi; ++i) {
            const Item it = load_(i);
            const std::size_t b = bucket_of(item_key(it));
            const std::size_t v = vp[b]++;
            ln[b].items[v % kLineItems] = it;
            if ((v + 1) % kLineItems == 0) {
                const std::size_t line_start = v + 1 - kLineItems;
                const std::size_t first = start[b] + skew;
                if (line_start >= first) {
                    store_line<kStream>(base + line_start, ln[b].items);
                } else {
                    const std::size_t off = first - line_start;
                    std::memcpy(static_cast<void*>(base + first), ln[b].items + off,
                                (kLineItems - off) * sizeof(Item));
                }
            }
        }
        for (std::size_t b = 0; b < buckets; ++b) {
            const std::size_t v = vp[b];
            const std::size_t line_start = v - v % kLineItems;
            const std::size_t from = std::max(line_start, start[b] + skew);
            if (from < v)
                std::memcpy(static_cast<void*>(base + from), ln[b].items + (from - line_start),
                            (v - from) * sizeof(Item));
            pos[b] = v - skew;  // where the next slice of this bucket goes
        }
#if defined(CCRADIX_HAVE_SSE2)
        if (kStream) _mm_sfence();  // the streamed lines before any later read or store
#endif
    }

    template <bool kStream> static void store_line(Item* dst, const Item* src) {
#if defined(CCRADIX_HAVE_SSE2)
        if (kStream) {
            auto* d = reinterpret_cast<__m128i*>(dst);
            const auto* s = reinterpret_cast<const __m128i*>(src);
            _mm_stream_si128(d + 0, _mm_load_si128(s + 0));
            _mm_stream_si128(d + 1, _mm_load_si128(s + 1));
            _mm_stream_si128(d + 2, _mm_load_si128(s + 2));
            _mm_stream_si128(d + 3, _mm_load_si128(s + 3));
            return;
        }
#endif
        std::memcpy(static_cast<void*>(dst), src, 64);
    }

    // ---- buckets ------------------------------------------------------------------------------

    // `bits_of(b)`: the keys of bucket b share every bit at and above it.
    template <class BitsOf>
    void finish_buckets(unsigned threads, const std::vector<std::size_t>& bucket_start,
                        BitsOf bits_of) {
        const std::size_t buckets = bucket_start.size() - 1;
        if (threads <= 1) {
            Arena arena(kCacheItems * 3);  // a copy of a bucket and two LSD buffers
            for (std::size_t b = 0; b < buckets; ++b) {
                const std::size_t lo = bucket_start[b], m = bucket_start[b + 1] - lo;
                if (m != 0) finish_bucket(work_, lo, m, bits_of(b), true, arena);
            }
            return;
        }
        // Largest buckets first, handed out dynamically, so the threads end together.
        std::vector<std::size_t> order(buckets);
        std::iota(order.begin(), order.end(), std::size_t(0));
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return bucket_start[a + 1] - bucket_start[a] > bucket_start[b + 1] - bucket_start[b];
        });
        std::atomic<std::size_t> next{0};
        parallel(threads, [&](unsigned) {
            Arena arena(kCacheItems * 3);  // a copy of a bucket and two LSD buffers
            for (;;) {
                const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
                if (i >= buckets) break;
                const std::size_t b = order[i];
                const std::size_t lo = bucket_start[b], m = bucket_start[b + 1] - lo;
                if (m == 0) break;  // sorted by size: the rest are empty
                finish_bucket(work_, lo, m, bits_of(b), true, arena);
            }
        });
    }

    // Items [lo, lo+m) of `src` (which is work_ or alt_, both indexed like the output) share
    // all key bits at and above `bits`.
    void finish_bucket(Item* src, std::size_t lo, std::size_t m, int bits, bool in_work,
                       Arena& arena) {
        if (m <= kCacheItems) {
            const std::size_t mark = arena.mark();
            const Item* from = src + lo;
            if (!in_work && alt_is_output_) {
                // The bucket lies in the output itself; the in-cache passes must not read what
                // they already overwrote.
                Item* copy = arena.take(m);
                std::copy(from, from + m, copy);
                from = copy;
            }
            sort_in_cache(from, lo, m, bits, arena);
            arena.reset(mark);
            return;
        }
        // Still larger than the cache: another out-of-cache MSD pass into the other buffer.
        U d = 0;
        const U k0 = item_key(src[lo]);
        for (std::size_t i = lo; i < lo + m; ++i) d |= item_key(src[i]) ^ k0;
        if (d == 0) {
            for (std::size_t i = lo; i < lo + m; ++i) emit_(i, src[i]);
            return;
        }
        const int hb = highest_bit(std::uint64_t(d)) + 1;
        // As many buckets as make them fit the cache on average, not more: tiny buckets pay
        // their counters and their cut-overs for nothing.
        // At least 8 bits, though: skewed keys (Zipf) crowd into one sub-bucket whatever the
        // size says, and each level should peel off a useful number of bits.
        int w = 8;
        while (w < Tuning::kMaxTopBits && (m >> w) > kCacheItems / 2) ++w;
        if (hb <= Tuning::kMaxTopBits) w = hb;  // one counting pass finishes the bucket
        w = std::min(w, hb);
        const int shift = hb - w;
        Item* dst = in_work ? alt_buffer() : work_;
        const U mask = static_cast<U>((U(1) << w) - 1);
        std::vector<std::size_t> pos(std::size_t(1) << w, 0);
        U unused = 0;
        count_digits(lo, lo + m, [src](std::size_t i) { return item_key(src[i]); },
                     digit(shift, mask), pos.size(), pos.data(), k0, unused);
        std::vector<std::size_t> starts(pos.size() + 1);
        std::size_t sum = lo;
        for (std::size_t b = 0; b < pos.size(); ++b) {
            starts[b] = sum;
            sum += pos[b];
            pos[b] = starts[b];
        }
        starts[pos.size()] = sum;
        for (std::size_t i = lo; i < lo + m; ++i) {
            const Item it = src[i];
            dst[pos[(item_key(it) >> shift) & mask]++] = it;
        }
        for (std::size_t b = 0; b < pos.size(); ++b) {
            const std::size_t sm = starts[b + 1] - starts[b];
            if (sm != 0) finish_bucket(dst, starts[b], sm, shift, !in_work, arena);
        }
    }

    Item* alt_buffer() {
        std::lock_guard<std::mutex> lock(alt_mutex_);
        if (alt_ == nullptr) {
            alt_owned_.reset(new Item[n_]);
            alt_ = alt_owned_.get();
        }
        return alt_;
    }

    static void insertion_sort(Item* a, std::size_t m) {
        for (std::size_t i = 1; i < m; ++i) {
            const Item x = a[i];
            const U kx = item_key(x);
            std::size_t j = i;
            while (j > 0 && kx < item_key(a[j - 1])) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
    }

    // Sorts m items at `src` (in cache, or about to be) and emits them at [lo, lo+m).
    // `bits`: key bits at and above it are shared by all m items.
    void sort_in_cache(const Item* src, std::size_t lo, std::size_t m, int bits, Arena& arena) {
        if (m <= Tuning::kInsertion) {
            Item tmp[Tuning::kInsertion];
            std::copy(src, src + m, tmp);
            insertion_sort(tmp, m);
            for (std::size_t i = 0; i < m; ++i) emit_(lo + i, tmp[i]);
            return;
        }
        if (bits <= low_bit_) {  // no key differs below `bits`: all equal
            for (std::size_t i = 0; i < m; ++i) emit_(lo + i, src[i]);
            return;
        }
        // Digits no wider than the bucket needs: 2^digit counters should not outnumber the keys.
        int digit = 4;
        while (digit < Tuning::kMaxLsdBits && (std::size_t(1) << digit) < m) ++digit;
        // Bits below the lowest one that varies anywhere are never counted; a digit on which the
        // whole bucket agrees costs its counting only (see lsd).
        const int lb = low_bit_;
        const int width = bits - lb;
        const int passes = (width + digit - 1) / digit;
        // The common case: few enough bits left for LSD over all of them. (A fourth pass only
        // for 32-bit keys: with 64-bit keys the two-digit prefix below is cheaper.)
        if (passes <= 3 || (passes <= Tuning::kMaxLsdPasses && kKeyBits == 32)) {
            lsd(src, lo, m, even_plan(lb, width, passes), true, arena);
            return;
        }
        // Many bits left (64-bit keys): order by the top two digits only, which separates all
        // but a few keys, then finish the runs that still share those digits. (Keys that agree
        // on both digits all land in one run, which recurses on the bits below.) When the top
        // digit is crowded (floats: the sign and exponent bits take few values), the two would
        // leave long runs: a third digit, counted in the same read, is sorted too.
        Plan plan = even_plan(std::max(low_bit_, bits - 3 * digit), std::min(width, 3 * digit), 3);
        plan.lowest_if_crowded = true;
        int shift = 0;
        const Item* sorted = lsd(src, lo, m, plan, false, arena, &shift);
        // Everything goes out in that order (one vectorised copy); then a scan for neighbours
        // that still share the prefix (a few in a bucket of uniform keys) puts just those runs
        // in order again, over the bits below, on top of what was written.
        for (std::size_t i = 0; i < m; ++i) emit_(lo + i, sorted[i]);
        auto prefix = [sorted, shift](std::size_t i) {
            return static_cast<U>(item_key(sorted[i]) >> shift);
        };
        std::size_t i = 0;
        while (i + 1 < m) {
            if (prefix(i) != prefix(i + 1)) {
                ++i;
                continue;
            }
            std::size_t j = i + 2;
            while (j < m && prefix(j) == prefix(i)) ++j;
            const std::size_t run = j - i;
            if (run <= Tuning::kInsertion) {
                Item tmp[Tuning::kInsertion];
                std::copy(sorted + i, sorted + j, tmp);
                insertion_sort(tmp, run);
                for (std::size_t t = 0; t < run; ++t) emit_(lo + i + t, tmp[t]);
            } else {
                const std::size_t mark = arena.mark();
                sort_in_cache(sorted + i, lo + i, run, shift, arena);
                arena.reset(mark);
            }
            i = j;
        }
    }

    struct Plan {
        int passes;
        int shift[Tuning::kMaxLsdPasses];
        int width[Tuning::kMaxLsdPasses];
        // Digit 0 is sorted only if the top digit is crowded (see sort_in_cache).
        bool lowest_if_crowded = false;
    };

    static Plan even_plan(int lb, int width, int passes) {
        Plan plan{};
        plan.passes = passes;
        int left = width, sh = lb;
        for (int p = 0; p < passes; ++p) {
            plan.width[p] = (left + (passes - p) - 1) / (passes - p);
            plan.shift[p] = sh;
            sh += plan.width[p];
            left -= plan.width[p];
        }
        return plan;
    }

    // A sixteenth of the keys or more share one value of this digit (uniform keys: 1/4096).
    static bool crowded(const std::uint32_t* count, std::size_t nb, std::size_t m) {
        return *std::max_element(count, count + nb) >= m / 16;
    }

    // LSD radix sort on the digits of `plan`. All histograms come from one read; a digit on which
    // every key agrees costs no pass. With `emit_result` the plan covers every varying bit and
    // the result is written to the output (nullptr is returned); otherwise the sorted items are
    // returned (in the arena, or `src` if no pass was needed).
    // `sorted_from` (if given) receives the lowest bit the result is sorted from.
    const Item* lsd(const Item* src, std::size_t lo, std::size_t m, const Plan& plan,
                    bool emit_result, Arena& arena, int* sorted_from = nullptr) {
        constexpr std::size_t kMaxDigits = std::size_t(1) << Tuning::kMaxLsdBits;
        std::uint32_t count[Tuning::kMaxLsdPasses][kMaxDigits];
        const int passes = std::min(plan.passes, Tuning::kMaxLsdPasses);
        for (int p = 0; p < passes; ++p)
            std::fill(count[p], count[p] + (std::size_t(1) << plan.width[p]), 0u);
        if (passes == 1) {
            const U mask = static_cast<U>((U(1) << plan.width[0]) - 1);
            const int s0 = plan.shift[0];
            for (std::size_t i = 0; i < m; ++i) ++count[0][(item_key(src[i]) >> s0) & mask];
        } else if (passes == 2) {
            const U mask0 = static_cast<U>((U(1) << plan.width[0]) - 1);
            const U mask1 = static_cast<U>((U(1) << plan.width[1]) - 1);
            const int s0 = plan.shift[0], s1 = plan.shift[1];
            for (std::size_t i = 0; i < m; ++i) {
                const U k = item_key(src[i]);
                ++count[0][(k >> s0) & mask0];
                ++count[1][(k >> s1) & mask1];
            }
        } else if (passes == 3) {
            const U mask0 = static_cast<U>((U(1) << plan.width[0]) - 1);
            const U mask1 = static_cast<U>((U(1) << plan.width[1]) - 1);
            const U mask2 = static_cast<U>((U(1) << plan.width[2]) - 1);
            const int s0 = plan.shift[0], s1 = plan.shift[1], s2 = plan.shift[2];
            for (std::size_t i = 0; i < m; ++i) {
                const U k = item_key(src[i]);
                ++count[0][(k >> s0) & mask0];
                ++count[1][(k >> s1) & mask1];
                ++count[2][(k >> s2) & mask2];
            }
        } else {
            const U mask0 = static_cast<U>((U(1) << plan.width[0]) - 1);
            const U mask1 = static_cast<U>((U(1) << plan.width[1]) - 1);
            const U mask2 = static_cast<U>((U(1) << plan.width[2]) - 1);
            const U mask3 = static_cast<U>((U(1) << plan.width[3]) - 1);
            const int s0 = plan.shift[0], s1 = plan.shift[1], s2 = plan.shift[2];
            const int s3 = plan.shift[3];
            for (std::size_t i = 0; i < m; ++i) {
                const U k = item_key(src[i]);
                ++count[0][(k >> s0) & mask0];
                ++count[1][(k >> s1) & mask1];
                ++count[2][(k >> s2) & mask2];
                ++count[3][(k >> s3) & mask3];
            }
        }
        int active[Tuning::kMaxLsdPasses], na = 0;
        for (int p = 0; p < passes; ++p) {
            const std::size_t nb = std::size_t(1) << plan.width[p];
            if (p == 0 && plan.lowest_if_crowded && !crowded(count[passes - 1], nb, m)) {
                if (sorted_from != nullptr) *sorted_from = plan.shift[1];
                continue;
            }
            if (p == 0 && sorted_from != nullptr) *sorted_from = plan.shift[0];
            const std::uint32_t first = count[p][(item_key(src[0]) >> plan.shift[p]) & (nb - 1)];
            if (first == m) continue;  // every key shares this digit
            std::uint32_t s = 0;
            for (std::size_t b = 0; b < nb; ++b) {
                const std::uint32_t c = count[p][b];
                count[p][b] = s;
                s += c;
            }
            active[na++] = p;
        }
        if constexpr (std::is_same<Item, U>::value) {
            // Bare keys, and a single digit varies: every other bit is the first key's, so the
            // counts alone are the output (duplicate-heavy buckets skip the scatter).
            if (emit_result && na == 1) {
                fill_from_offsets(src[0], plan.shift[active[0]], plan.width[active[0]],
                                  count[active[0]], lo, m);
                return nullptr;
            }
        }
        // Passes whose write positions alias get gaps (see aliased). A sorted result handed back
        // must be contiguous: only an emitted one may have them.
        bool padded[Tuning::kMaxLsdPasses] = {};
        bool any_padded = false;
        for (int a = 0; a < na; ++a) {
            const int p = active[a];
            padded[a] = (emit_result || a + 1 < na) &&
                        aliased(count[p], std::size_t(1) << plan.width[p], m);
            any_padded = any_padded || padded[a];
        }
        // Two buffers, used in turn: the passes stay within twice the bucket's size of cache.
        const std::size_t room = m + (any_padded ? kPadItems * kMaxDigits : 0);
        Item* buffers[2] = {na > 0 ? arena.take(room) : nullptr,
                            na > 1 ? arena.take(room) : nullptr};
        const Item* cur = src;
        Runs runs{nullptr, nullptr, 0, m};  // of `cur`: [0, m), then where each pass put its runs
        std::uint32_t begins[2][kMaxDigits];  // of this pass's runs, and of the last one's
        for (int a = 0; a < na; ++a) {
            const int p = active[a];
            const std::size_t nb = std::size_t(1) << plan.width[p];
            const U mask = static_cast<U>(nb - 1);
            const int shift = plan.shift[p];
            std::uint32_t* c = count[p];
            std::uint32_t* begin = nullptr;
            if (padded[a]) {
                for (std::size_t b = 0; b < nb; ++b)
                    c[b] += static_cast<std::uint32_t>(b * kPadItems);
                begin = begins[a % 2];
                std::copy(c, c + nb, begin);
            }
            // The last pass too scatters within the cache; the output is then written in order
            // (scattered stores straight into a large output would miss on every line).
            Item* nxt = buffers[a % 2];
            runs.each(cur, [nxt, c, shift, mask](const Item* in, std::size_t len) {
                std::size_t i = 0;
                for (; i + 4 <= len; i += 4) {  // unrolled: four loads ahead of the stores
                    const Item i0 = in[i], i1 = in[i + 1], i2 = in[i + 2], i3 = in[i + 3];
                    nxt[c[(item_key(i0) >> shift) & mask]++] = i0;
                    nxt[c[(item_key(i1) >> shift) & mask]++] = i1;
                    nxt[c[(item_key(i2) >> shift) & mask]++] = i2;
                    nxt[c[(item_key(i3) >> shift) & mask]++] = i3;
                }
                for (; i < len; ++i) nxt[c[(item_key(in[i]) >> shift) & mask]++] = in[i];
            });
            runs = Runs{begin, c, nb, m};
            cur = nxt;
        }
        if (!emit_result) return cur;  // contiguous (see above)
        std::size_t at = lo;
        runs.each(cur, [&](const Item* in, std::size_t len) {
            for (std::size_t i = 0; i < len; ++i) emit_(at + i, in[i]);
            at += len;
        });
        return nullptr;
    }

    // Items per cache line: the gap a padded LSD pass leaves after each digit's run.
    static constexpr std::size_t kPadItems = kLineItems;

    // Where an LSD pass left its items: runs [begin[b], end[b]) of a buffer after a padded pass,
    // else all of [0, m) (`begin` null). (`begin` and `end` point at the pass's own tables.)
    struct Runs {
        const std::uint32_t* begin = nullptr;
        const std::uint32_t* end = nullptr;
        std::size_t count = 0, m = 0;

        template <class F> void each(const Item* buf, F&& f) const {
            if (begin == nullptr) {
                f(buf, m);
                return;
            }
            for (std::size_t b = 0; b < count; ++b)
                if (end[b] > begin[b]) f(buf + begin[b], end[b] - begin[b]);
        }
    };

    // Whether the write positions of a pass over m items (its digit offsets) crowd into few L1
    // sets: digits with equal counts, each a multiple of 4 KiB of items (a permutation of a
    // range of integers: ids, integer-valued floats), put every write stream in one set, and
    // the scatter ran 4.5 times slower (2.3 against 0.5 ns per key). A gap of one line after
    // each digit's run spreads them. Buffers that fit in the L1 cannot conflict.
    // The test looks at the first 64 digits' positions: random ones fall in about 40 of the 64
    // sets, aliased ones in a few.
    static bool aliased(const std::uint32_t* offset, std::size_t nb, std::size_t m) {
        constexpr std::size_t kSets = 64;  // 4 KiB of lines: the L1 set stride of x86 and arm64
        if (nb < kSets || m * sizeof(Item) < (std::size_t(64) << 10)) return false;
        std::uint64_t sets = 0;
        for (std::size_t b = 0; b < kSets; ++b)
            sets |= std::uint64_t(1) << (offset[b] * sizeof(Item) / 64 % kSets);
        return __builtin_popcountll(sets) <= 16;
    }

    // Writes m keys at [lo, lo+m): digit value v (at `shift`, `width` wide) of `like` for the
    // keys from offsets[v] up to the next value's offset.
    void fill_from_offsets(U like, int shift, int width, const std::uint32_t* offsets,
                           std::size_t lo, std::size_t m) {
        const std::size_t nb = std::size_t(1) << width;
        const U rest = static_cast<U>(like & ~static_cast<U>(((U(1) << width) - 1) << shift));
        emit_runs(lo, nb, [=](std::size_t v) { return static_cast<U>(rest | (U(v) << shift)); },
                  [=](std::size_t v) { return (v + 1 < nb ? offsets[v + 1] : m) - offsets[v]; });
    }

    // Writes key_of(b), count_of(b) times, for b = 0 .. nb-1, from output position `at` on.
    template <class KeyOf, class CountOf>
    void emit_runs(std::size_t at, std::size_t nb, KeyOf key_of, CountOf count_of) {
        for (std::size_t b = 0; b < nb; ++b) {
            const U k = key_of(b);
            for (std::size_t end = at + count_of(b); at < end; ++at) emit_(at, k);
        }
    }

    std::size_t n_;
    Load load_;
    Emit emit_;
    Item* work_;
    Item* alt_;
    bool alt_is_output_;  // a caller-given `alt` is the output array (key-only sorts)
    std::unique_ptr<Item[]> alt_owned_;
    std::mutex alt_mutex_;
    Options opt_;
    int low_bit_ = 0;  // no key differs from another below this bit
};

template <class Item, class Load, class Emit>
void run_engine(std::size_t n, Load load, Emit emit, Item* alt, const Options& opt, Item* work) {
    using E = Engine<Item, Load, Emit>;
    E probe(n, load, emit, nullptr, nullptr, opt);
    if (n == 0 || probe.copy_if_all_equal()) return;
    // Inputs that fit in the cache are sorted there without scratch memory, unless the sample
    // shows few distinct keys (counted) or mostly small ones (bucketed by magnitude first).
    typename E::Sample sample;
    if (n >= Tuning::kMinSample) {
        sample = probe.sample_keys();
        if (probe.fill_if_few_distinct(sample)) return;
    }
    if (E::fits_in_cache(n) && !probe.skewed(sample)) {
        probe.run_small();
        return;
    }
    if (work != nullptr) {
        E(n, load, emit, work, alt, opt).run(sample);
        return;
    }
    ScratchLease lease(n * sizeof(Item));
    E(n, load, emit, lease.as<Item>(), alt, opt).run(sample);
}

template <class T> using Bits = typename KeyTraits<T>::U;

// numpy's stable argsort treats -0.0 and +0.0 as equal (input order decides); `sort` orders
// them. argsort folds -0.0 into +0.0 so that its indices match numpy's exactly.
template <class T> Bits<T> fold_signed_zero(Bits<T> b) {
    if constexpr (std::is_floating_point<T>::value) {
        constexpr Bits<T> kSign = Bits<T>(1) << (sizeof(Bits<T>) * 8 - 1);
        return b == kSign ? Bits<T>(0) : b;
    } else {
        return b;
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public API. Pointers are to the raw bits of the values (T only selects the key transform), so
// callers can hand over float memory as uint32_t without aliasing casts of the values.

// Sorts n values of type T from `in` to `out` (`in == out` sorts in place).
template <class T>
void sort(const detail::Bits<T>* in, detail::Bits<T>* out, std::size_t n, const Options& opt = {}) {
    using Tr = detail::KeyTraits<T>;
    using U = detail::Bits<T>;
    const U flip = opt.descending ? static_cast<U>(~U(0)) : U(0);
    auto load = [in, flip](std::size_t i) -> U { return Tr::to_key(in[i]) ^ flip; };
    auto emit = [out, flip](std::size_t i, U k) { out[i] = Tr::from_key(k ^ flip); };
    // Once the first pass has read the input, `out` is free; it serves as the second buffer.
    detail::run_engine<U>(n, load, emit, out, opt);
}

template <class T> void sort(detail::Bits<T>* a, std::size_t n, const Options& opt = {}) {
    sort<T>(a, a, n, opt);
}

// Stable argsort: idx[i] is the input position of the i-th smallest value; equal values (and
// -0.0 / +0.0, and all NaNs) keep their input order, as numpy.argsort(kind="stable") does.
template <class T>
void argsort(const detail::Bits<T>* in, std::int64_t* idx, std::size_t n, const Options& opt = {}) {
    using Tr = detail::KeyTraits<T>;
    using U = detail::Bits<T>;
    // 32-bit positions halve the traffic of 32-bit keys when they can address the input.
    auto go = [&](auto index_tag) {
        using I = decltype(index_tag);
        using Item = detail::Pair<U, I>;
        auto load = [in](std::size_t i) -> Item {
            return Item{Tr::to_key(detail::fold_signed_zero<T>(in[i])), I(i)};
        };
        auto emit = [idx](std::size_t i, const Item& it) { idx[i] = std::int64_t(it.value); };
        detail::run_engine<Item>(n, load, emit, nullptr, opt);
    };
    if (n <= std::size_t(UINT32_MAX))
        go(std::uint32_t{});
    else
        go(std::uint64_t{});
}

// Stable sort of keys carrying values (V: any trivially copyable 4- or 8-byte payload bits).
// Keys are ordered as by `sort` (-0.0 before +0.0); ties keep their input order.
template <class T, class V>
void sort_pairs(const detail::Bits<T>* keys, const V* values, detail::Bits<T>* keys_out,
                V* values_out, std::size_t n, const Options& opt = {}) {
    static_assert(std::is_trivially_copyable<V>::value, "payload must be trivially copyable");
    using Tr = detail::KeyTraits<T>;
    using U = detail::Bits<T>;
    using Item = detail::Pair<U, V>;
    const U flip = opt.descending ? static_cast<U>(~U(0)) : U(0);
    auto load = [keys, values, flip](std::size_t i) -> Item {
        return Item{static_cast<U>(Tr::to_key(keys[i]) ^ flip), values[i]};
    };
    auto emit = [keys_out, values_out, flip](std::size_t i, const Item& it) {
        keys_out[i] = Tr::from_key(it.key ^ flip);
        values_out[i] = it.value;
    };
    detail::run_engine<Item>(n, load, emit, nullptr, opt);
}

// Gives the kept scratch buffer back to the system; returns the bytes freed.
inline std::size_t release_scratch() {
    auto& pool = detail::ScratchPool::instance();
    const std::size_t bytes = pool.cached_bytes();
    pool.trim();
    return bytes;
}

// ---------------------------------------------------------------------------------------------
// Reference points for the benchmark (not used by the API above).

template <class U> void reference_std_sort(U* a, std::size_t n) { std::sort(a, a + n); }

// The textbook LSD radix sort: 8-bit digits, one pass per byte, ping-pong through one buffer.
template <class U> void reference_lsd8(U* a, std::size_t n) {
    std::vector<U> buf(n);
    U* src = a;
    U* dst = buf.data();
    for (unsigned shift = 0; shift < sizeof(U) * 8; shift += 8) {
        std::size_t count[257] = {};
        for (std::size_t i = 0; i < n; ++i) ++count[((src[i] >> shift) & 0xFF) + 1];
        for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
        for (std::size_t i = 0; i < n; ++i) dst[count[(src[i] >> shift) & 0xFF]++] = src[i];
        std::swap(src, dst);
    }
    // sizeof(U) is even, so the result is back in `a`.
}

}  // namespace ccradix
