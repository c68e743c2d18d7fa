import pytest

from edgebit.atomic import atomic_output_dir
from edgebit.errors import CheckpointError, EdgebitError
from edgebit.tokenizer import load_tokenizer


def test_checkpoint_tokenizer_round_trips_text(hf_checkpoint):
    tok = load_tokenizer(hf_checkpoint("bitnet", "packed"))
    ids = tok.encode("Hello, wörld!").ids
    assert ids[0] == 256  # BOS from the TemplateProcessing post-processor
    assert tok.decode(ids, skip_special_tokens=True) == "Hello, wörld!"


def test_missing_or_broken_tokenizer_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="tokenizer.json: not found"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="tokenizer.json: not a valid tokenizers file") as e:
        load_tokenizer(tmp_path)
    assert "\n" not in str(e.value)


def test_output_dir_is_replaced_only_when_complete(tmp_path):
    dest = tmp_path / "out"
    with atomic_output_dir(dest) as tmp:
        (tmp / "a").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(dest, force=True) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (dest / "a").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial leftovers
    with pytest.raises(EdgebitError, match="already exists; pass --force"):
        with atomic_output_dir(dest):
            pass


def test_leftovers_of_a_killed_run_are_cleaned(tmp_path):
    stale = tmp_path / ".out.partial-999999999"
    stale.mkdir()
    with atomic_output_dir(tmp_path / "out"):
        pass
    assert not stale.exists()


def test_random_checkpoint_refuses_to_overwrite(tmp_path, cli):
    assert cli("random-checkpoint", "-o", tmp_path / "c").returncode == 0
    again = cli("random-checkpoint", "-o", tmp_path / "c")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
