"""The scale-out benchmark's control line: the worker path's own CPU per row against the
one-process engine's, and what two workers cost each other (pure report code, no runs)."""

from benchmarks.scaleout import control_line, paired_ratios


def run(backend: str, workers: int, cpu: float) -> dict[str, object]:
    return {"backend": backend, "workers": workers, "client_cpu_ms_per_row": cpu}


def test_control_line_takes_medians_and_differences() -> None:
    runs = [
        run("workers", 1, 1.10),
        run("workers", 1, 1.20),
        run("workers", 1, 9.00),  # an outlier: the median ignores it
        run("control", 1, 1.25),
        run("control", 1, 1.30),
        run("control", 1, 1.35),
        run("workers", 2, 1.50),
        run("ray", 2, 7.00),  # another backend's N = 2: not the workers'
    ]
    line = control_line(runs)
    assert "--workers 1 1.20" in line
    assert "one worker process 1.30 (+0.10" in line
    assert "--workers 2 1.50 (+0.20" in line


def test_control_line_is_empty_without_the_control() -> None:
    assert control_line([run("workers", 1, 1.0), run("workers", 2, 1.4)]) == ""


def test_control_line_without_two_workers() -> None:
    line = control_line([run("workers", 1, 1.0), run("control", 1, 0.9)])
    assert "(-0.10" in line and "--workers 2" not in line


def rate(workers: int, repeat: int, rows_per_s: float) -> dict[str, object]:
    return {"backend": "workers", "workers": workers, "repeat": repeat, "rows_per_s": rows_per_s}


def test_paired_ratios_divide_within_each_repetition() -> None:
    # the machine slowed down in repetition 1: a ratio of medians would mix the two speeds
    runs = [rate(1, 0, 1000), rate(2, 0, 1600), rate(1, 1, 500), rate(2, 1, 700), rate(3, 1, 9)]
    runs.append(rate(2, 2, 1500))  # a repetition cut short before its --workers 1 run
    assert paired_ratios(runs, 2) == [1.6, 1.4]
    assert paired_ratios(runs, 3) == [9 / 500]
