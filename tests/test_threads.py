"""The CPU thread count: --threads, then OMP_NUM_THREADS, then the cores free now."""

import pytest

from dreamline.cli import main
from dreamline.threads import ThreadsError, choose_threads


def test_requested_threads_win() -> None:
    chosen = choose_threads(3, environ={"OMP_NUM_THREADS": "1"}, cores=2, load=0.0)
    assert chosen == (3, "--threads")


@pytest.mark.parametrize("bad", [0, -1, 257])
def test_a_bad_count_is_refused(bad: int) -> None:
    with pytest.raises(ThreadsError, match=f"--threads: {bad} is out of range"):
        choose_threads(bad, environ={}, cores=2, load=0.0)


def test_omp_num_threads_comes_next() -> None:
    assert choose_threads(None, environ={"OMP_NUM_THREADS": "1"}, cores=8, load=0.0) == (
        1, "OMP_NUM_THREADS")


@pytest.mark.parametrize("cores, load, expected", [
    (2, 0.0, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 5.0, 1), (8, 2.2, 6), (4, -0.0, 4),
])
def test_the_default_is_the_free_cores(cores: int, load: float, expected: int) -> None:
    count, why = choose_threads(None, environ={"OMP_NUM_THREADS": "x"}, cores=cores, load=load)
    assert count == expected
    assert why == f"{cores} cores, load {load:.1f}: {expected} free"


def test_the_cli_says_what_it_chose_and_refuses_a_bad_count(
        capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        script = tmp_path / "empty.txt"
        script.write_text("# nothing to run\n")
        assert main(["--threads", "1", "--from_file", str(script), "-o", str(tmp_path)]) == 0
        assert ">> 1 CPU thread for torch (--threads)" in capsys.readouterr().out
        assert main(["--threads", "0", "--from_file", str(script), "-o", str(tmp_path)]) == 2
        assert "--threads: 0 is out of range" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("count, why, cores, expected", [
    (256, "--threads", 2, ">> 256 CPU threads for torch: --threads 256 is more than the 2 cores "
                          "here; expect it to be slower"),
    (3, "OMP_NUM_THREADS", 1, ">> 3 CPU threads for torch: OMP_NUM_THREADS=3 is more than the "
                              "1 core here; expect it to be slower"),
    (2, "--threads", 2, ">> 2 CPU threads for torch (--threads)"),
    (1, "OMP_NUM_THREADS", 4, ">> 1 CPU thread for torch (OMP_NUM_THREADS; --threads N to "
                              "choose)"),
])
def test_more_threads_than_cores_is_kept_and_said(count: int, why: str, cores: int,
                                                  expected: str) -> None:
    from dreamline.threads import threads_line

    assert threads_line(count, why, cores) == expected


def test_the_cli_says_more_threads_than_cores_in_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dreamline import threads

    monkeypatch.setattr(threads, "_cores", lambda: 2)
    before = torch.get_num_threads()
    try:
        script = tmp_path / "empty.txt"
        script.write_text("# nothing to run\n")
        assert main(["--threads", "3", "--from_file", str(script), "-o", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert ">> 3 CPU threads for torch: --threads 3 is more than the 2 cores here; expect " \
               "it to be slower" in out
    finally:
        torch.set_num_threads(before)
