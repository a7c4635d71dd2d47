"""helpers.local_model: the one-time conversion of SmolLM2's GGUF is safe when two processes do it at once."""

from helpers.local_model import move_into_place


def test_the_first_finished_conversion_is_kept(tmp_path):
    folder, mine = tmp_path / "model", tmp_path / "model.partial-2"
    folder.mkdir()
    (folder / "weights").write_text("the other process's")
    mine.mkdir()
    (mine / "weights").write_text("mine")
    move_into_place(mine, folder)
    assert (folder / "weights").read_text() == "the other process's" and not mine.exists()


def test_a_finished_conversion_moves_into_place(tmp_path):
    folder, mine = tmp_path / "model", tmp_path / "model.partial-1"
    mine.mkdir()
    (mine / "weights").write_text("mine")
    move_into_place(mine, folder)
    assert (folder / "weights").read_text() == "mine" and not mine.exists()
