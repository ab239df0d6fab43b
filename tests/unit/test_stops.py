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
