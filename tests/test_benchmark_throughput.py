"""benchmarks/throughput.py's Fmax column: which recorded place-and-route result stands for a
build (the whole top's, else the slowest engine's once every engine was placed), and its CLI's refusals."""
import json

import pytest

import benchmarks.throughput as throughput

LANES = {"conv1": 24, "conv2": 12, "fc": 1}


def run(module, fmax, lanes=LANES, model="m"):
    return {"model": model, "lanes": lanes, "module": module, "fmax_mhz": fmax,
            "critical_path": {"from": f"{module}.a", "to": f"{module}.b", "logic_ns": 1.0, "routing_ns": 2.0}}


def fmax_with(tmp_path, monkeypatch, runs):
    path = tmp_path / "fmax.json"
    path.write_text(json.dumps({"runs": runs}))
    monkeypatch.setattr(throughput, "FMAX", path)
    return throughput.fmax_for("m", LANES)


def test_every_engine_placed_gives_the_slowest(tmp_path, monkeypatch):
    got = fmax_with(tmp_path, monkeypatch, [run("tern_conv1", 101.0), run("tern_conv2", 99.5),
                                            run("tern_fc", 150.0), run("tern_conv2", 50.0, lanes={"conv2": 6})])
    assert got["fmax_mhz"] == 99.5 and got["critical_path"]["module"] == "tern_conv2"
    row = {"critical_path": got["critical_path"]}
    assert throughput.slowest_engine(row) == " (conv2, slowest engine)"


def test_an_engine_not_placed_gives_no_figure(tmp_path, monkeypatch):
    assert fmax_with(tmp_path, monkeypatch, [run("tern_conv1", 101.0), run("tern_fc", 150.0)]) is None


def test_the_whole_top_wins(tmp_path, monkeypatch):
    got = fmax_with(tmp_path, monkeypatch, [run("tern_conv1", 101.0), run("tern_top", 90.0)])
    assert got["fmax_mhz"] == 90.0 and throughput.slowest_engine(got) == ""


@pytest.mark.parametrize("option", ["--images", "--event-images", "--chunk"])
def test_counts_below_one_are_refused(option, capsys):
    from benchmarks.throughput import main
    with pytest.raises(SystemExit) as exit_info:
        main([option, "0"])
    assert exit_info.value.code == 2
    assert f"{option} must be at least 1, not 0" in capsys.readouterr().err


def test_table_only_looks_up_each_rows_fmax_again(tmp_path, monkeypatch):
    # A row measured before its engines were placed again takes the Fmax recorded now.
    fmax_with(tmp_path, monkeypatch, [run("tern_conv1", 126.6), run("tern_conv2", 123.6), run("tern_fc", 153.4)])
    row = {"config": "fast", "what": "w", "model": "m", "images": 2000, "mismatches": 0, "accuracy": 99.2,
           "cycles_per_image": 994.0, "images_per_second": 100603.6, "latency_cycles": 1297, "latency_us": 12.97,
           "engines": {"conv1": "dense×24", "conv2": "dense×12", "fc": "dense×1"}, "resources": {}, "fits": True,
           "fmax_mhz": 110.1, "critical_path": None, "git": "abc1234", "command": "c"}
    results, table = tmp_path / "throughput.json", tmp_path / "throughput.md"
    results.write_text(json.dumps({"rows": [row], "event_linearity": None}))
    monkeypatch.setattr(throughput, "RESULTS", results)
    monkeypatch.setattr(throughput, "TABLE", table)
    assert throughput.main(["--table-only"]) == 0
    assert json.loads(results.read_text())["rows"][0]["fmax_mhz"] == 123.6
    assert "123.6 MHz (conv2, slowest engine)" in table.read_text() and "110.1" not in table.read_text()


def test_table_only_without_results_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(throughput, "RESULTS", tmp_path / "none.json")
    assert throughput.main(["--table-only"]) == 2
    assert "run benchmarks/throughput.py first" in capsys.readouterr().err
