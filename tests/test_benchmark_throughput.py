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
