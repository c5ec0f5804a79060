"""emoprep.corpus.iemocap: EmoEvaluation files written by hand in the real layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoprep.corpus.iemocap import (
    Corpus,
    CorpusError,
    Evaluation,
    Problem,
    category_code,
    dialog_of,
    find_root,
    gender_of,
    read_corpus,
    session_of,
    speaker_side,
)

FILE_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"


def header(uid: str, start: float, end: float, label: str = "neu") -> str:
    return f"[{start:.4f} - {end:.4f}]\t{uid}\t{label}\t[2.5000, 3.0000, 2.0000]"


def c(who: str, categories: str, comment: str = "") -> str:
    return f"C-{who}:\t{categories}\t({comment})"


def a(who: str) -> str:
    return f"A-{who}:\tval 3; act 2; dom  2;\t()"


def write_dialog(root: Path, dialog: str, blocks: list[list[str]], *, session: int | None = None,
                 newline: str = "\n") -> Path:
    """Write Session<n>/dialog/EmoEvaluation/<dialog>.txt: a % line, then blank-line separated blocks."""
    folder = root / f"Session{session or session_of(dialog)}" / "dialog" / "EmoEvaluation"
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join([FILE_HEADER] + ["\n".join(lines) for lines in blocks]) + "\n"
    path = folder / f"{dialog}.txt"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def good_block(uid: str, start: float = 1.0, label: str = "ang") -> list[str]:
    return [header(uid, start, start + 1.5, label), c("E1", "Anger;"), c("E2", "Anger;"), c("F1", "Sadness;"),
            a("E1")]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return tmp_path / "IEMOCAP_full_release"


def test_header_fields_and_irregular_dialog_names(root: Path) -> None:
    write_dialog(root, "Ses05M_script01_1b", [
        [header("Ses05M_script01_1b_M013", 6.2901, 8.2357, "exc"), c("E2", "Excited;")],
        [header("Ses05M_script01_1b_F000", 0.5, 2.0, "xxx"), c("E1", "Neutral;")],
    ])
    write_dialog(root, "Ses03M_impro05a", [[header("Ses03M_impro05a_F002", 10.0, 12.25, "sad")]])

    corpus = read_corpus(root)

    assert corpus.problems == ()
    assert corpus.root == root
    assert [u.utterance_id for u in corpus.utterances] == [
        "Ses03M_impro05a_F002", "Ses05M_script01_1b_F000", "Ses05M_script01_1b_M013",
    ]
    impro, script_f, script_m = corpus.utterances
    assert (script_m.dialog, script_m.session, script_m.improvised) == ("Ses05M_script01_1b", 5, False)
    assert (script_m.start, script_m.end, script_m.released_label) == (6.2901, 8.2357, "exc")
    assert script_m.duration == pytest.approx(1.9456)
    assert (script_m.gender, script_m.speaker_side) == ("M", "left")
    assert script_f.released_label == "xxx"
    assert (script_f.gender, script_f.speaker_side) == ("F", "right")
    assert (impro.dialog, impro.session, impro.improvised) == ("Ses03M_impro05a", 3, True)
    assert impro.external == ()
    assert corpus.sentence_wav(script_m) == (
        root / "Session5" / "sentences" / "wav" / "Ses05M_script01_1b" / "Ses05M_script01_1b_M013.wav")
    assert corpus.dialog_avi("Ses03M_impro05a") == root / "Session3" / "dialog" / "avi" / "DivX" / "Ses03M_impro05a.avi"


def test_self_evaluations_kept_apart_and_dimensional_lines_ignored(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [[
        header("Ses01F_impro01_F000", 1.0, 2.0),
        c("E2", "Neutral;"), c("E3", "Frustration; Anger;", "angry; a bit"),
        c("F1", "Sadness; Anger;", "free comment"), c("M1", "Happiness;"),
        a("E3"), a("F1"),
    ]])

    (utterance,) = read_corpus(root).utterances

    assert utterance.external == (Evaluation("E2", ("neu",)), Evaluation("E3", ("fru", "ang")))
    assert utterance.self_evaluations == (Evaluation("F1", ("sad", "ang")), Evaluation("M1", ("hap",)))


@pytest.mark.parametrize("word, code", [
    ("Neutral", "neu"), ("Neutral state", "neu"), ("neutral  STATE", "neu"), ("Happiness", "hap"),
    ("Excited", "exc"), ("Sadness", "sad"), ("ANGER", "ang"), ("Frustration", "fru"), ("Surprise", "sur"),
    ("Fear", "fea"), ("Disgust", "dis"), ("Other", "oth"), ("Other:amused", "oth"), ("Other: bored stiff", "oth"),
    ("Bewildered", "oth"), ("Neutralish", "oth"),
])
def test_category_words(word: str, code: str) -> None:
    assert category_code(word) == code


def test_category_words_in_a_file(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [[
        header("Ses01F_impro01_F000", 1.0, 2.0),
        c("E1", "Neutral state;"), c("E2", "Other:amused; happiness;"), c("E3", "Bewildered;"),
        c("E4", ";"),  # an evaluator who ticked nothing casts no vote
        "C-E5:  Sadness; Fear; (comment without tabs; with a semicolon)",
    ]])

    (utterance,) = read_corpus(root).utterances

    assert [e.categories for e in utterance.external] == [("neu",), ("oth", "hap"), ("oth",), (), ("sad", "fea")]


def test_only_top_level_annotation_files_are_read(root: Path) -> None:
    path = write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_F000")])
    evaluation_dir = path.parent
    for sub in ("Categorical", "Attribute", "Self-evaluation"):
        (evaluation_dir / sub).mkdir()
        # Per-evaluator copies look like dialog files; reading them would add or duplicate utterances.
        (evaluation_dir / sub / "Ses01F_impro01_e2_cat.txt").write_text(path.read_text())
        (evaluation_dir / sub / "Ses01F_impro01.txt").write_text(path.read_text())
    (evaluation_dir / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07 mac resource fork")

    corpus = read_corpus(root)

    assert corpus.problems == ()
    assert [u.utterance_id for u in corpus.utterances] == ["Ses01F_impro01_F000"]


def test_utterances_sorted_by_id_across_files_and_sessions(root: Path) -> None:
    write_dialog(root, "Ses02M_script01_3", [good_block("Ses02M_script01_3_M001", 5.0),
                                              good_block("Ses02M_script01_3_F000", 1.0)])
    write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_M000", 9.0),
                                           good_block("Ses01F_impro01_F000", 2.0)])

    ids = [u.utterance_id for u in read_corpus(root).utterances]

    assert ids == ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses02M_script01_3_F000", "Ses02M_script01_3_M001"]


def test_gender_from_the_id_not_the_session_letter_and_speaker_side(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_F000"), good_block("Ses01F_impro01_M000")])
    write_dialog(root, "Ses02M_impro02", [good_block("Ses02M_impro02_M001"), good_block("Ses02M_impro02_F001")])

    found = {u.utterance_id: (u.gender, u.speaker_side) for u in read_corpus(root).utterances}

    assert found == {
        "Ses01F_impro01_F000": ("F", "left"),
        "Ses01F_impro01_M000": ("M", "right"),
        "Ses02M_impro02_M001": ("M", "left"),
        "Ses02M_impro02_F001": ("F", "right"),
    }
    assert gender_of("Ses05M_script01_1b_F013") == "F"
    assert speaker_side("Ses05M_script01_1b_M013") == "left"
    assert dialog_of("Ses05M_script01_1b_M013") == "Ses05M_script01_1b"


# Each case: the lines of one bad block (the file has a good block before and after it), the
# 1-based line of the file the problem must point at, the utterance id it must name, a word of its reason.
# Line numbers: 1 is the % line, 2 blank, 3-7 the first good block, 8 blank, 9 the bad block's header.
MALFORMED = {
    "header without label and VAD": (["[1.0000 - 2.0000]\tSes01F_impro01_F001", c("E1", "Anger;")],
                                     9, "Ses01F_impro01_F001", "header"),
    "header not in brackets": (["1.0000 - 2.0000\tSes01F_impro01_F001\tang\t[1, 2, 3]", c("E1", "Anger;")],
                               9, "Ses01F_impro01_F001", "header"),
    "header that is not one": (["just some words", c("E1", "Anger;")], 9, None, "header"),
    "times not numbers": ([header("Ses01F_impro01_F001", 1, 2).replace("1.0000", "1.o"), c("E1", "Anger;")],
                          9, "Ses01F_impro01_F001", "bad times"),
    "end before start": ([header("Ses01F_impro01_F001", 4.0, 3.5), c("E1", "Anger;")],
                         9, "Ses01F_impro01_F001", "not after its start"),
    "id of another dialog": ([header("Ses01F_impro02_F001", 3.0, 4.0), c("E1", "Anger;")],
                             9, "Ses01F_impro02_F001", "Ses01F_impro02"),
    "not an utterance id": ([header("Ses01F_impro01_X01", 3.0, 4.0)], 9, "Ses01F_impro01_X01", "not an utterance id"),
    "unknown released label": ([header("Ses01F_impro01_F001", 3.0, 4.0, "joy")], 9, "Ses01F_impro01_F001", "joy"),
    "garbage line in a block": ([header("Ses01F_impro01_F001", 3.0, 4.0), c("E1", "Anger;"), "hello there"],
                                11, "Ses01F_impro01_F001", "hello there"),
    "unknown evaluator": ([header("Ses01F_impro01_F001", 3.0, 4.0), c("X1", "Anger;")],
                          10, "Ses01F_impro01_F001", "C-X1"),
    "evaluator twice": ([header("Ses01F_impro01_F001", 3.0, 4.0), c("E1", "Anger;"), c("E1", "Sadness;")],
                        11, "Ses01F_impro01_F001", "twice"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_block_reported_with_file_and_line_and_skipped(root: Path, case: str) -> None:
    lines, line, utterance_id, reason_word = MALFORMED[case]
    bad_file = write_dialog(root, "Ses01F_impro01", [
        good_block("Ses01F_impro01_F000"), lines, good_block("Ses01F_impro01_M002", 7.0),
    ])
    write_dialog(root, "Ses02M_impro01", [good_block("Ses02M_impro01_F000")])

    corpus = read_corpus(root)

    assert [u.utterance_id for u in corpus.utterances] == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M002", "Ses02M_impro01_F000"]
    (problem,) = corpus.problems
    assert (problem.path, problem.line, problem.utterance_id) == (str(bad_file), line, utterance_id)
    assert reason_word in problem.reason


def test_duplicate_id_drops_both_copies(root: Path) -> None:
    path = write_dialog(root, "Ses01F_impro01", [
        good_block("Ses01F_impro01_F000", 1.0), good_block("Ses01F_impro01_F001", 3.0),
        good_block("Ses01F_impro01_F000", 5.0),
    ])

    corpus = read_corpus(root)

    assert [u.utterance_id for u in corpus.utterances] == ["Ses01F_impro01_F001"]
    (problem,) = corpus.problems
    assert (problem.path, problem.line, problem.utterance_id) == (str(path), 15, "Ses01F_impro01_F000")
    assert "duplicate" in problem.reason and "line 3" in problem.reason


def test_problem_text_names_file_line_and_utterance() -> None:
    assert str(Problem("a/b.txt", 12, "Ses01F_impro01_F000", "bad times")) == (
        "a/b.txt:12: Ses01F_impro01_F000: bad times")
    assert str(Problem("a/b.txt", None, None, "cannot read")) == "a/b.txt: -: cannot read"


def test_crlf_blank_line_inside_block_and_stray_bytes(root: Path) -> None:
    path = write_dialog(root, "Ses01F_impro01", [
        [header("Ses01F_impro01_F000", 1.0, 2.0), c("E1", "Sadness;"), "", c("E2", "Sadness;", "cafe")],
    ], newline="\r\n")
    path.write_bytes(path.read_bytes().replace(b"cafe", b"caf\xe9"))  # Latin-1 byte in a comment

    corpus = read_corpus(root)

    assert corpus.problems == ()
    (utterance,) = corpus.utterances
    assert [e.categories for e in utterance.external] == [("sad",), ("sad",)]


def test_dialog_file_in_the_wrong_session_and_odd_names_are_reported(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_F000")])
    misplaced = write_dialog(root, "Ses02F_impro01", [good_block("Ses02F_impro01_F000")], session=1)
    notes = misplaced.parent / "notes.txt"
    notes.write_text("hello\n")

    corpus = read_corpus(root)

    assert [u.utterance_id for u in corpus.utterances] == ["Ses01F_impro01_F000"]
    assert {(p.path, p.line) for p in corpus.problems} == {(str(misplaced), None), (str(notes), None)}


def test_session_without_annotations_is_reported(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_F000")])
    (root / "Session2" / "dialog").mkdir(parents=True)

    corpus = read_corpus(root)

    assert len(corpus.utterances) == 1
    (problem,) = corpus.problems
    assert problem.path == str(root / "Session2" / "dialog" / "EmoEvaluation")


def test_find_root_accepts_the_release_folder_or_its_parent(root: Path) -> None:
    write_dialog(root, "Ses01F_impro01", [good_block("Ses01F_impro01_F000")])

    assert find_root(root) == root
    assert find_root(root.parent) == root
    assert isinstance(read_corpus(root.parent), Corpus)


def test_missing_or_empty_root_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such folder"):
        read_corpus(tmp_path / "absent")
    with pytest.raises(CorpusError, match="no Session"):
        read_corpus(tmp_path)
    (tmp_path / "Session1").write_text("a file, not a folder")
    (tmp_path / "Session1_backup").mkdir()
    with pytest.raises(CorpusError, match="no Session"):
        read_corpus(tmp_path)


def test_text_before_the_first_block_is_reported_and_the_blocks_still_read(root: Path) -> None:
    path = write_dialog(root, "Ses01F_impro01", [["stray words"], good_block("Ses01F_impro01_F000")])

    corpus = read_corpus(root)

    assert [u.utterance_id for u in corpus.utterances] == ["Ses01F_impro01_F000"]
    assert [(p.path, p.line, p.utterance_id) for p in corpus.problems] == [(str(path), 3, None)]
