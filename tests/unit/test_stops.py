from hypothesis import given, settings
from hypothesis import strategies as st

from leeway.engines.stops import StopMatcher


def run(stops, pieces):
    m = StopMatcher(stops)
    out = [m.feed(p) for p in pieces]
    return "".join(out) + ("" if m.matched else m.flush()), m.matched, out


def test_no_stops_passes_everything_through():
    assert run([], ["a", "b"]) == ("ab", None, ["a", "b"])


def test_a_stop_inside_one_piece_cuts_there():
    text, matched, _ = run(["END"], ["hello END world"])
    assert text == "hello " and matched == "END"


def test_a_stop_spanning_pieces_is_never_partly_emitted():
    text, matched, out = run(["</s>"], ["ab<", "/", "s>cd"])
    assert text == "ab" and matched == "</s>"
    assert out == ["ab", "", ""]


def test_a_false_start_is_released():
    text, matched, out = run(["STOP"], ["ST", "ART", "!"])
    assert text == "START!" and matched is None
    assert out[0] == ""  # held: might have been the start of STOP


def test_the_earliest_of_several_stops_wins():
    text, matched, _ = run(["world", "lo"], ["hello world"])
    assert text == "hel" and matched == "lo"


def test_held_text_is_flushed_at_the_end():
    m = StopMatcher(["xyz"])
    assert m.feed("abcx") == "abc"
    assert m.flush() == "x" and m.matched is None


def test_the_first_stop_to_complete_wins_even_if_another_began_earlier():
    text, matched, _ = run(["abcdef", "cd"], ["abcdef"])
    assert text == "ab" and matched == "cd"


def test_of_stops_ending_together_the_longest_wins():
    text, matched, _ = run(["b", "ab"], ["x", "ab"])
    assert text == "x" and matched == "ab"


def expected(stops: list[str], text: str) -> tuple[str, str | None]:
    """By brute force: the text before the first stop to be complete (the longest of those ending
    at that character)."""
    for end in range(1, len(text) + 1):
        done = [s for s in stops if s and text[:end].endswith(s)]
        if done:
            stop = max(done, key=len)
            return text[: end - len(stop)], stop
    return text, None


def held_back(stops: list[str], text: str) -> int:
    """The longest end of ``text`` that is a proper prefix of a stop."""
    return max((n for s in stops for n in range(1, len(s)) if text.endswith(s[:n])), default=0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text("abc", min_size=1, max_size=5), max_size=6),
    st.lists(st.text("abcd", max_size=6), max_size=8),
)
def test_matches_and_holds_back_exactly_what_brute_force_says(stops, pieces):
    m = StopMatcher(stops)
    seen, out = "", ""
    for piece in pieces:
        seen += piece
        out += m.feed(piece)
        if m.matched is not None:
            break
        assert out == seen[: len(seen) - held_back(stops, seen)]  # nothing held that need not be
    if m.matched is None:
        out += m.flush()
    assert (out, m.matched) == expected(stops, seen)
