// Tern's native whole-network bench: the generated top (Vtop, any build) driven through its
// AXI ports by plain C++, with no Python per cycle. sim/native.py compiles it with the
// build's RTL (one cached model per RTL) and reads what it writes into sim.network.RawRun.
//
//   tern_sim CONFIG BEATS OUT [--progress]
//
// CONFIG   text, one "key value..." per line, written by sim/native.py (images, beats_per_image,
//          result_beats, classes, gap, stall, seed, timeout, control, reg NAME OFFSET,
//          identity NAME, event LAYER REGISTER)
// BEATS    the images as raw little-endian uint64 beats, images × beats_per_image
//          (sim.axis.pack_images' layout)
// OUT      JSON: logits, classes, in/out cycle stamps, registers, identity, event counts,
//          error (null when the run went through); always written, also after a hang.
//
// It plays the cocotb bench (sim/tb/network.py with sim/axis.py's drivers) cycle for cycle:
// the same reset, the same AXI4-Lite reads and write before the images, every image queued
// at once (back to back unless `gap` asks for idle cycles), the same per-result hang timeout,
// four cycles of settling and the same register reads at the end. Each cycle the top is
// evaluated with the clock low (inputs settle), its outputs are sampled (what the flops see
// at the edge: both sides of a handshake), then the clock rises. A stamp is the edge's
// number counting from 0, as cocotb's now_cycles() gives it (its clock's first edge is at
// time 0, 10 ns a cycle), so both benches stamp every handshake alike.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

double sc_time_stamp() { return 0; }

namespace {

// The cocotb bench's reset, like this one: 4 edges with aresetn low, then 2 before the first
// register read.
constexpr int RESET_CYCLES = 4;
constexpr int AFTER_RESET_CYCLES = 2;
constexpr int SETTLE_CYCLES = 4;  // after the last result, before the counters are read

struct Config {
    long images = 0, beats_per_image = 0, result_beats = 0, classes = 0;
    double gap = 0, stall = 0;
    uint64_t seed = 0, timeout = 100000;
    uint32_t control = 0;
    std::vector<std::pair<std::string, uint32_t>> registers;      // name, byte offset (map order)
    std::vector<std::string> identity;
    std::vector<std::pair<std::string, std::string>> events;      // layer, register
    uint32_t offset(const std::string& name) const {
        for (auto& r : registers)
            if (r.first == name) return r.second;
        throw std::runtime_error("register " + name + " is not in the register map");
    }
    bool has(const std::string& name) const {
        for (auto& r : registers)
            if (r.first == name) return true;
        return false;
    }
};

Config read_config(const char* path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("cannot read ") + path);
    Config c;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        std::string key;
        if (!(s >> key)) continue;
        if (key == "images") s >> c.images;
        else if (key == "beats_per_image") s >> c.beats_per_image;
        else if (key == "result_beats") s >> c.result_beats;
        else if (key == "classes") s >> c.classes;
        else if (key == "gap") s >> c.gap;
        else if (key == "stall") s >> c.stall;
        else if (key == "seed") s >> c.seed;
        else if (key == "timeout") s >> c.timeout;
        else if (key == "control") s >> c.control;
        else if (key == "reg") { std::string n; uint32_t o; s >> n >> o; c.registers.emplace_back(n, o); }
        else if (key == "identity") { std::string n; s >> n; c.identity.push_back(n); }
        else if (key == "event") { std::string l, r; s >> l >> r; c.events.emplace_back(l, r); }
        else throw std::runtime_error("unknown config key " + key);
        if (s.fail()) throw std::runtime_error("bad config line: " + line);
    }
    if (c.images < 1 || c.beats_per_image < 1 || c.result_beats < 1 || c.classes < 1)
        throw std::runtime_error("config must give images, beats_per_image, result_beats and classes");
    return c;
}

std::string thousands(uint64_t v) {  // Python's f"{v:,}"
    std::string s = std::to_string(v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
}

std::string hex(uint64_t v) { char b[32]; snprintf(b, sizeof b, "0x%" PRIx64, v); return b; }

std::string binary(uint64_t v) {  // Python's f"{v:#b}"
    std::string s;
    do { s.insert(s.begin(), char('0' + (v & 1))); v >>= 1; } while (v);
    return "0b" + s;
}

struct Hang : std::runtime_error { using std::runtime_error::runtime_error; };

// What the top drives, sampled with the clock low just before an edge.
struct Sampled {
    bool s_ready, m_valid, m_last, arready, rvalid, awready, wready, bvalid;
    uint64_t m_data;
    uint32_t rdata, rresp, bresp;
};

class Bench {
public:
    Bench(const Config& c, std::vector<uint64_t> beats, bool progress)
        : cfg(c), beats(std::move(beats)), progress(progress), rng(c.seed), uniform(0.0, 1.0) {
        top = std::make_unique<Vtop>(ctx.get(), "top");
        top->aclk = 0;
        top->aresetn = 0;
        top->s_axis_tvalid = 0;
        top->s_axis_tlast = 0;
        top->s_axi_awvalid = top->s_axi_wvalid = top->s_axi_bready = 0;
        top->s_axi_arvalid = top->s_axi_rready = 0;
        top->s_axi_awprot = top->s_axi_arprot = 0;
        sink_ready = cfg.stall > 0 ? 0 : 1;
        top->m_axis_tready = sink_ready;
        top->eval();
    }
    ~Bench() { top->final(); }

    // The whole run; throws (Hang, runtime_error) with the message the report carries.
    void run() {
        cycles(RESET_CYCLES);
        top->aresetn = 1;
        cycles(AFTER_RESET_CYCLES);
        for (auto& name : cfg.identity) identity.emplace_back(name, read(cfg.offset(name)));
        write(cfg.offset("CONTROL"), cfg.control);
        queued = cfg.images;  // every image at once: back to back
        source_next();
        for (long i = 0; i < cfg.images; ++i) {
            uint64_t since = cycle;
            while (long(classes.size()) <= i) {
                if (cycle - since >= cfg.timeout) {
                    uint32_t in = read(cfg.offset("IMAGES_IN")), status = read(cfg.offset("STATUS"));
                    throw Hang("no result for image " + std::to_string(i) + " within " + thousands(cfg.timeout) +
                               " cycles (" + std::to_string(i) + " of " + std::to_string(cfg.images) +
                               " came back, " + std::to_string(in_cycles.size()) + " images and " +
                               std::to_string(accepted) + " beats accepted; IMAGES_IN " + std::to_string(in) +
                               ", STATUS " + hex(status) + "): the design hangs");
                }
                tick();
            }
            if (progress) { printf("%ld\n", i + 1); fflush(stdout); }
        }
        cycles(SETTLE_CYCLES);
        for (auto& r : cfg.registers) registers.emplace_back(r.first, read(r.second));
        for (auto& e : cfg.events) event_counts.emplace_back(e.first, read(cfg.offset(e.second)));
    }

    void write_json(const char* path, const std::string& error) const;

private:
    const Config& cfg;
    std::vector<uint64_t> beats;
    bool progress;
    std::unique_ptr<VerilatedContext> ctx = std::make_unique<VerilatedContext>();
    std::unique_ptr<Vtop> top;
    uint64_t cycle = 0;  // rising edges taken so far
    std::mt19937_64 rng;
    std::uniform_real_distribution<double> uniform;

    // s_axis source: image `src_image`, beat `src_beat`; `src_wait` idle edges before it.
    long queued = 0, src_image = 0, src_beat = 0, src_wait = 0;
    bool src_valid = false;
    uint64_t src_first = 0, accepted = 0;
    // m_axis sink
    int sink_ready = 1;
    std::vector<uint64_t> frame;
    uint64_t frame_first = 0;

    std::vector<std::pair<uint64_t, uint64_t>> in_cycles, out_cycles;
    std::vector<std::vector<int32_t>> logits;
    std::vector<int32_t> classes;

public:
    std::vector<std::pair<std::string, uint32_t>> identity, registers, event_counts;

private:
    void cycles(int n) { for (int i = 0; i < n; ++i) tick(); }
    uint64_t stamp() const { return cycle - 1; }  // the edge just taken, counting from 0

    Sampled tick() {
        top->aclk = 0;
        top->eval();
        Sampled s{bool(top->s_axis_tready), bool(top->m_axis_tvalid), bool(top->m_axis_tlast),
                  bool(top->s_axi_arready), bool(top->s_axi_rvalid), bool(top->s_axi_awready),
                  bool(top->s_axi_wready), bool(top->s_axi_bvalid), uint64_t(top->m_axis_tdata),
                  uint32_t(top->s_axi_rdata), uint32_t(top->s_axi_rresp), uint32_t(top->s_axi_bresp)};
        bool s_shake = src_valid && s.s_ready, m_shake = sink_ready && s.m_valid;
        top->aclk = 1;
        top->eval();
        ++cycle;
        if (s_shake) source_accepted();
        else if (!src_valid && src_wait > 0 && --src_wait == 0) source_drive();
        if (m_shake) sink_beat(s.m_data, s.m_last);
        if (cfg.stall > 0) {
            sink_ready = uniform(rng) >= cfg.stall;
            top->m_axis_tready = sink_ready;
        }
        return s;
    }

    // AxisSource: before each beat TVALID stays low a geometric number of edges (probability
    // `gap` per edge), then the beat waits for TREADY.
    void source_next() {
        if (src_image >= queued) return;
        src_wait = 0;
        while (cfg.gap > 0 && uniform(rng) < cfg.gap) ++src_wait;
        if (src_wait == 0) source_drive();
    }

    void source_drive() {
        top->s_axis_tdata = beats[size_t(src_image * cfg.beats_per_image + src_beat)];
        top->s_axis_tlast = src_beat == cfg.beats_per_image - 1;
        top->s_axis_tvalid = 1;
        src_valid = true;
    }

    void source_accepted() {
        if (src_beat == 0) src_first = stamp();
        ++accepted;
        src_valid = false;
        top->s_axis_tvalid = 0;
        top->s_axis_tlast = 0;
        if (++src_beat == cfg.beats_per_image) {
            in_cycles.emplace_back(src_first, stamp());
            src_beat = 0;
            ++src_image;
        }
        source_next();
    }

    // AxisSink: a frame ends at TLAST; its words are the K logits then the class (int32).
    void sink_beat(uint64_t data, bool last) {
        if (frame.empty()) frame_first = stamp();
        frame.push_back(data);
        if (!last) return;
        if (long(frame.size()) != cfg.result_beats)
            throw std::runtime_error("ValueError: a result frame must have " + std::to_string(cfg.result_beats) +
                                     " beats, not " + std::to_string(frame.size()));
        std::vector<int32_t> words;
        for (uint64_t b : frame) {
            words.push_back(int32_t(uint32_t(b)));
            words.push_back(int32_t(uint32_t(b >> 32)));
        }
        logits.emplace_back(words.begin(), words.begin() + cfg.classes);
        classes.push_back(words[size_t(cfg.classes)]);
        out_cycles.emplace_back(frame_first, stamp());
        frame.clear();
    }

    // AxiLiteMaster, one transaction at a time; a slave that never answers is a hang too.
    Sampled until(bool Sampled::*flag, const std::string& what) {
        for (uint64_t since = cycle;;) {
            Sampled s = tick();
            if (s.*flag) return s;
            if (cycle - since >= cfg.timeout)
                throw Hang("AXI4-Lite " + what + " got no answer within " + thousands(cfg.timeout) + " cycles");
        }
    }

    uint32_t read(uint32_t offset) {
        std::string what = "read of " + hex(offset);
        top->s_axi_araddr = offset;
        top->s_axi_arvalid = 1;
        until(&Sampled::arready, what);
        top->s_axi_arvalid = 0;
        top->s_axi_rready = 1;
        Sampled s = until(&Sampled::rvalid, what);
        top->s_axi_rready = 0;
        if (s.rresp) throw std::runtime_error("RuntimeError: AXI4-Lite " + what + " answered " + binary(s.rresp));
        return s.rdata;
    }

    void write(uint32_t offset, uint32_t value) {
        std::string what = "write of " + hex(offset);
        top->s_axi_awaddr = offset;
        top->s_axi_wdata = value;
        top->s_axi_wstrb = 0xF;
        top->s_axi_awvalid = 1;
        top->s_axi_wvalid = 1;
        bool aw = false, w = false;
        for (uint64_t since = cycle; !(aw && w);) {
            Sampled s = tick();
            aw = aw || s.awready;
            w = w || s.wready;
            if (aw) top->s_axi_awvalid = 0;
            if (w) top->s_axi_wvalid = 0;
            if (cycle - since >= cfg.timeout)
                throw Hang("AXI4-Lite " + what + " got no answer within " + thousands(cfg.timeout) + " cycles");
        }
        top->s_axi_bready = 1;
        Sampled s = until(&Sampled::bvalid, what);
        top->s_axi_bready = 0;
        if (s.bresp) throw std::runtime_error("RuntimeError: AXI4-Lite " + what + " answered " + binary(s.bresp));
    }

};

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char ch : s) {
        if (ch == '"' || ch == '\\') { out += '\\'; out += char(ch); }
        else if (ch < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", ch); out += b; }
        else out += char(ch);
    }
    return out + "\"";
}

void write_pairs(FILE* f, const std::vector<std::pair<uint64_t, uint64_t>>& v) {
    fputc('[', f);
    for (size_t i = 0; i < v.size(); ++i)
        fprintf(f, "%s[%" PRIu64 ",%" PRIu64 "]", i ? "," : "", v[i].first, v[i].second);
    fputc(']', f);
}

void write_map(FILE* f, const std::vector<std::pair<std::string, uint32_t>>& v) {
    fputc('{', f);
    for (size_t i = 0; i < v.size(); ++i)
        fprintf(f, "%s%s:%" PRIu32, i ? "," : "", json_string(v[i].first).c_str(), v[i].second);
    fputc('}', f);
}

void Bench::write_json(const char* path, const std::string& error) const {
    std::string tmp = std::string(path) + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + tmp);
    fputs("{\"logits\":[", f);
    for (size_t i = 0; i < logits.size(); ++i) {
        fputs(i ? ",[" : "[", f);
        for (size_t k = 0; k < logits[i].size(); ++k) fprintf(f, "%s%" PRId32, k ? "," : "", logits[i][k]);
        fputc(']', f);
    }
    fputs("],\"classes\":[", f);
    for (size_t i = 0; i < classes.size(); ++i) fprintf(f, "%s%" PRId32, i ? "," : "", classes[i]);
    fputs("],\"in_cycles\":", f);
    write_pairs(f, in_cycles);
    fputs(",\"out_cycles\":", f);
    write_pairs(f, out_cycles);
    fputs(",\"registers\":", f);
    write_map(f, registers);
    fputs(",\"identity\":", f);
    write_map(f, identity);
    fputs(",\"event_counts\":", f);
    write_map(f, event_counts);
    fprintf(f, ",\"cycles\":%" PRIu64 ",\"error\":%s}\n", cycle, error.empty() ? "null" : json_string(error).c_str());
    if (fclose(f) != 0 || rename(tmp.c_str(), path) != 0) throw std::runtime_error(std::string("cannot write ") + path);
}

std::vector<uint64_t> read_beats(const char* path, const Config& cfg) {
    size_t count = size_t(cfg.images * cfg.beats_per_image);
    std::vector<uint64_t> beats(count);
    FILE* f = fopen(path, "rb");
    if (!f) throw std::runtime_error(std::string("cannot read ") + path);
    size_t got = fread(beats.data(), sizeof(uint64_t), count, f);
    fclose(f);
    if (got != count)
        throw std::runtime_error(std::string(path) + " holds " + std::to_string(got) + " beats, not " +
                                 std::to_string(count));
    return beats;  // little-endian on every host Verilator runs on here (x86-64, aarch64)
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG BEATS OUT [--progress]\n", argv[0]);
        return 2;
    }
    bool progress = argc > 4 && std::strcmp(argv[4], "--progress") == 0;
    std::unique_ptr<Bench> bench;
    Config cfg;
    try {
        cfg = read_config(argv[1]);
        bench = std::make_unique<Bench>(cfg, read_beats(argv[2], cfg), progress);
    } catch (const std::exception& e) {
        fprintf(stderr, "tern_sim: %s\n", e.what());
        return 2;
    }
    std::string error;
    try {
        bench->run();
    } catch (const Hang& e) {
        error = e.what();
    } catch (const std::exception& e) {
        error = e.what();
    }
    try {
        bench->write_json(argv[3], error);
    } catch (const std::exception& e) {
        fprintf(stderr, "tern_sim: %s\n", e.what());
        return 2;
    }
    return error.empty() ? 0 : 1;
}
