"""The prompt-line grammar (dream-cli.md section 1), table-driven: lines and what they mean."""

from __future__ import annotations

from typing import Any

import pytest

from dreamline.errors import DreamlineError
from dreamline.parse import ParsedLine, is_comment, parse_line, tokenize
from dreamline.request import Request, RequestError
from dreamline.switches import SWITCHES, UNSUPPORTED, Kind, Unsupported, launch_defaults


class FakeRecall:
    """Seeds 1000+N and images out/N.png for the N-th-from-last image; only 3 images exist."""

    def seed(self, back: int) -> int:
        if back > 3:
            raise IndexError(f"the previous command made 3 images, not {back}")
        return 1000 + back

    def image(self, back: int) -> str:
        if back > 3:
            raise DreamlineError(f"the previous command made 3 images, not {back}")
        return f"out/{back}.png"


GOOD: list[tuple[str, dict[str, Any]]] = [
    # the prompt
    ("a cat", {"prompt": "a cat"}),
    ("", {"prompt": ""}),
    ("a   cat  ", {"prompt": "a cat"}),
    ('"a   cat"', {"prompt": "a   cat"}),
    ("there's a fly", {"prompt": "there's a fly"}),
    ('"there\'s a fly" -s5', {"prompt": "there's a fly", "steps": 5}),
    ("a cat's toy -s5", {"prompt": "a cat's toy", "steps": 5}),
    ("'tis the season", {"prompt": "'tis the season"}),
    ("'a cat' -s 5", {"prompt": "a cat", "steps": 5}),
    ("'a cat's toy' -s 5", {"prompt": "a cat's toy", "steps": 5}),
    ("cats' toys", {"prompt": "cats' toys"}),
    ('"a cat -- sleeping" -s20', {"prompt": "a cat -- sleeping", "steps": 20}),
    ('"-a cat" -s20', {"prompt": "-a cat", "steps": 20}),
    ("a cat -5 degrees -s 3", {"prompt": "a cat -5 degrees", "steps": 3}),
    (r'"say \"hi\"" -s 3', {"prompt": 'say "hi"', "steps": 3}),
    (r"a cat\:0.5 dog", {"prompt": r"a cat\:0.5 dog"}),
    (r'"a cat\:0.5 dog"', {"prompt": r"a cat\:0.5 dog"}),
    (r'"back\\slash"', {"prompt": "back\\slash"}),
    (r"a\ b", {"prompt": "a b"}),
    ("a tabby cat:0.25 a white duck:0.75", {"prompt": "a tabby cat:0.25 a white duck:0.75"}),
    ("a cat [blurry, ugly]", {"prompt": "a cat [blurry, ugly]"}),
    ("cat:1 dog:-1 -x", {"prompt": "cat:1 dog:-1", "skip_normalize": True}),
    # steps: separate, joined, long, --long=value, prefix, last one wins
    ("a -s 20", {"steps": 20}),
    ("a -s20", {"steps": 20}),
    ("a --steps 20", {"steps": 20}),
    ("a --steps=20", {"steps": 20}),
    ("a -s=20", {"steps": 20}),
    ("a --ste 20", {"steps": 20}),
    ("a -s 20 -s 30", {"steps": 30}),
    ("a -s +7", {"steps": 7}),
    # seed
    ("a -S 42", {"seed": 42}),
    ("a -S0", {"seed": 0}),
    ("a -S 0", {"seed": 0}),
    ("a --seed=4294967295", {"seed": 4294967295}),
    ("a --see 5", {"seed": 5}),
    ("a -S -1", {"seed": 1001}),
    ("a -S-2", {"seed": 1002}),
    ("a --seed=-3", {"seed": 1003}),
    ("a -S -1 -S 7", {"seed": 7}),
    # iterations, size, cfg
    ("a -n 4", {"iterations": 4}),
    ("a --iterations=2", {"iterations": 2}),
    ("a -W 500 -H 300", {"width": 500, "height": 300}),
    ("a --width 640 --height=448", {"width": 640, "height": 448}),
    ("a -C 7", {"cfg_scale": 7.0}),
    ("a -C12.5", {"cfg_scale": 12.5}),
    ("a --cfg .5", {"cfg_scale": 0.5}),
    ("a -C 1e1", {"cfg_scale": 10.0}),
    # sampler and its aliases, karras, seamless
    ("a -A k_euler_a", {"sampler": "k_euler_a"}),
    ("a -Addim", {"sampler": "ddim"}),
    ("a -m plms", {"sampler": "plms"}),
    ("a --sampler=k_heun", {"sampler": "k_heun"}),
    ("a --sam k_dpm_2", {"sampler": "k_dpm_2"}),
    ("a --karras", {"karras": True}),
    ("a --k", {"karras": True}),
    ("a --seamless", {"seamless": True}),
    # img2img
    ("a -I x.png", {"init_img": "x.png"}),
    ("a -I./x.png", {"init_img": "./x.png"}),
    ('a -I "my pics/x.png"', {"init_img": "my pics/x.png"}),
    ("a -I 'my pics/x.png'", {"init_img": "my pics/x.png"}),
    (r"a -I my\ pics/x.png", {"init_img": "my pics/x.png"}),
    ('a -I"my pics/x.png"', {"init_img": "my pics/x.png"}),
    ('a --init_img="my pics/x.png"', {"init_img": "my pics/x.png"}),
    (r"a -I C:\pics\x.png", {"init_img": r"C:\pics\x.png"}),
    ('a -I "-odd.png"', {"init_img": "-odd.png"}),
    ('a -I "-1"', {"init_img": "-1"}),
    ("a -I -1", {"init_img": "out/1.png"}),
    ("a -I-3", {"init_img": "out/3.png"}),
    ("a -I x.png -f 0.5", {"init_img": "x.png", "strength": 0.5}),
    ("a -I x.png -f0.5", {"init_img": "x.png", "strength": 0.5}),
    ("a -I x.png -f 1", {"strength": 1.0}),
    ("a -I x.png --str 0.4", {"strength": 0.4}),
    ("a -I x.png -T", {"fit": True}),
    ("a -I x.png -fit", {"fit": True}),
    ("a -I x.png --fit", {"fit": True}),
    ("a -I x.png -M mask.png", {"init_mask": "mask.png"}),
    ("a -I x.png --init_mask=m.png --invert_mask", {"init_mask": "m.png", "invert_mask": True}),
    ("a -I x.png -M m.png --inv", {"invert_mask": True}),
    # variations
    ("a -v 0.2", {"variation_amount": 0.2}),
    ("a -S 1 -V 1:0.1,2:0.2", {"with_variations": ((1, 0.1), (2, 0.2))}),
    ("a -S 1 -V7:1", {"with_variations": ((7, 1.0),)}),
    ('a -S 1 -V "1:0.1, 2:.2"', {"with_variations": ((1, 0.1), (2, 0.2))}),
    ("a -S 1 --with_variations=3:0.5", {"with_variations": ((3, 0.5),)}),
    # prompt switches, output switches, flag clusters
    ("a -x", {"skip_normalize": True}),
    ("a -t", {"log_tokenization": True}),
    ("a -g", {"grid": True}),
    ("a -gxt", {"grid": True, "skip_normalize": True, "log_tokenization": True}),
    ("a -o out/dir", {"outdir": "out/dir"}),
    ('a -o "my out"', {"outdir": "my out"}),
    ("a --outdir=o", {"outdir": "o"}),
    ("a --save_intermediates 5", {"save_intermediates": 5}),
    ("a --save_i=5", {"save_intermediates": 5}),
    ("a --save_intermediates 2 --decode_intermediates",
     {"save_intermediates": 2, "decode_intermediates": True}),
    # a line of switches only
    ("-s 5", {"prompt": "", "steps": 5}),
    # a lone backslash is text: it never swallows the next switch into the prompt
    (r"a cat \ -s2 -S1", {"prompt": "a cat \\", "steps": 2, "seed": 1}),
    ("a cat \\", {"prompt": "a cat \\"}),
    (r"a\ b -s2", {"prompt": "a b", "steps": 2}),
    # tabs are spaces
    ("a\tcat\t-s\t5", {"prompt": "a cat", "steps": 5}),
    ('"a\tcat"', {"prompt": "a cat"}),
    # --negative_prompt (A1111's habit) is the prompt's [negative] words
    ('a cat --negative_prompt "blurry, ugly"', {"prompt": "a cat [blurry, ugly]"}),
    ("a cat [dark] --negative_prompt=blurry -s5", {"prompt": "a cat [dark] [blurry]", "steps": 5}),
    ("--negative_prompt blurry", {"prompt": "[blurry]"}),
    ("a cat --neg blurry --negative_prompt ugly", {"prompt": "a cat [blurry] [ugly]"}),
    ('a cat --negative_prompt ""', {"prompt": "a cat"}),
]

BAD: list[tuple[str, str]] = [
    # control characters: the line is refused, naming the character and its column
    ("a cat\x1b[0m -s2", "U+001B (ESC) at column 6"),
    ("a\x00", "U+0000 (NUL) at column 2"),
    ("a cat -s 5\x7f", "U+007F (DEL) at column 11"),
    ("a \x9b1m", "U+009B (CSI) at column 3"),
    ('"a\nb"', "U+000A (LF) at column 3"),
    ("a\rb", "U+000D (CR) at column 2"),
    ('a --negative_prompt "x [y]"', "--negative_prompt: 'x [y]' has a square bracket"),
    ("a --negative_prompt", "--negative_prompt: missing its value"),
    ("a -h foo", "-h/--help: 'foo' is not a help topic; expected nothing, or one of all, gen"),
    ('a "cat -s 5', 'unbalanced " quote'),
    ('"a cat', 'unbalanced " quote'),
    ("a -q", "unknown switch '-q'"),
    ("a --stesp 5", "did you mean --steps"),
    ("a --Steps 5", "did you mean --steps"),
    ("a -- b", "'--' is not a switch"),
    ("a - b", "unknown switch '-'"),
    ("a --s 5", "--s is ambiguous; could be"),
    ("a --in x", "--in is ambiguous"),
    ("a -s", "-s/--steps: missing its value"),
    ("a -s -S 5", "-s/--steps: missing its value"),
    ("a -I", "-I/--init_img: missing its value"),
    ("a -s five", "-s/--steps: 'five' is not a whole number"),
    ("a -s 5.0", "-s/--steps: '5.0' is not a whole number"),
    ("a -s 0", "-s/--steps: 0 is out of range"),
    ("a -s 1001", "-s/--steps: 1001 is out of range"),
    ("a -s -5", "-s/--steps: -5 is out of range"),
    ("a -s 5_0", "is not a whole number"),
    ("a -S 4294967296", "-S/--seed: 4294967296 is out of range"),
    ("a -S x", "-S/--seed: 'x' is not a whole number"),
    ("a -S -0", "-S/--seed: -0 cannot name an earlier image"),
    ("a -S -4", "-S/--seed: -4 has no seed to reuse: the previous command made 3 images"),
    ("a -I -4", "-I/--init_img: -4 has no image to reuse: the previous command made 3"),
    ("a -n 0", "-n/--iterations: 0 is out of range"),
    ("a -W 4", "-W/--width: 4 is out of range"),
    ("a -H 9000", "-H/--height: 9000 is out of range"),
    ("a -W 512.5", "-W/--width: '512.5' is not a whole number"),
    ("a -C -1", "-C/--cfg_scale: -1.0 is out of range"),
    ("a -C nan", "-C/--cfg_scale: 'nan' is not a number"),
    ("a -C inf", "-C/--cfg_scale: 'inf' is not a number"),
    ("a -C 1e400", "-C/--cfg_scale: '1e400' is too large to be a number here; expected a "
                   "value in [0, 100]"),
    ("a -V 1:1e999", "-V/--with_variations: weight '1e999' is too large to be a number here; "
                     "expected seed:weight pairs"),
    ("a -A eulr", "-A/--sampler: 'eulr' is not one of the choices"),
    ("a -m K_LMSS", "-A/--sampler: 'K_LMSS' is not one of the choices"),
    ("a --schedule polyexponential", "--schedule: 'polyexponential' is not one of the choices"),
    ("a -A ddim --schedule karras", "--schedule karras: the Karras sigma schedule is for the "
                                    "samplers that walk sigmas, not 'ddim'"),
    ("a -A k_euler --karras --schedule exponential",
     "--karras and --schedule exponential disagree"),
    ("a -A lcm -s 60", "-s/--steps: 60 is too many for the lcm sampler; expected at most 50"),
    ("a -I x.png -f 0", "-f/--strength: 0.0 is out of range; expected a value in (0, 1]"),
    ("a -I x.png -f 1.5", "-f/--strength: 1.5 is out of range"),
    ("a -f", "-f/--strength: missing its value"),
    ("a -fi", "-f/--strength: 'i' is not a number"),
    ("a -M m.png", "-M/--init_mask: 'm.png' needs an init image"),
    ("a -v 2", "-v/--variation_amount: 2.0 is out of range"),
    ("a -V 1:0.1", "-V/--with_variations needs -S/--seed"),
    ("a -S 1 -V 1-0.1", "-V/--with_variations: '1-0.1' is not a list of seed:weight pairs"),
    ("a -S 1 -V 1:0.1,", "is not a list of seed:weight pairs"),
    ("a -S 1 -V :0.1", "is not a list of seed:weight pairs"),
    ("a -S 1 -V 1:2", "-V/--with_variations weight: 2.0 is out of range"),
    ("a -S 1 -V \"-1:0.5\"", "-V/--with_variations seed: -1 is out of range"),
    ("a -S 1 -V -1:0.5", "-V/--with_variations: missing its value"),
    ("a --he", "--he is ambiguous; could be --height, --help"),
    ("a -g yes", "'yes' is not a switch and comes after the switches"),
    ("a --grid=yes", "-g/--grid takes no value, but got 'yes'"),
    ("a -gs", "-g/--grid takes no value, but got '-gs'"),
    ("a -s 5 more words", "'more' is not a switch"),
    ("a -o", "-o/--outdir: missing its value"),
    ('a -o ""', "-o/--outdir: an empty value"),
    ("a --save_intermediates 0", "--save_intermediates: 0 is out of range"),
    ("a --decode_intermediates", "--decode_intermediates: there are no intermediates to decode"),
    ("cat:1 dog:-1", "sub-prompt weights add up to zero"),
    # reference switches dreamline does not implement: the line is skipped with a reason
    ("a -G 0.5",
     "--gfpgan_strength (face restoration) is not supported by dreamline; line skipped"),
    ("a -G0.5", "(face restoration) is not supported"),
    ("a --gfpgan_strength=0.8", "(face restoration) is not supported"),
    ("a -ft codeformer", "--facetool (face restoration) is not supported"),
    ("a --facetool gfpgan", "(face restoration) is not supported"),
    ("a -U 2 0.75", "--upscale (upscaling) is not supported"),
    ("a --upsc 2", "--upscale (upscaling) is not supported"),
    ("a --embiggen 2", "--embiggen (embiggen upscaling) is not supported"),
    ("a --hires_fix", "--hires_fix (high-resolution fix) is not supported"),
]


def parse(line: str, defaults: Request | None = None) -> ParsedLine:
    return parse_line(line, defaults if defaults is not None else Request(), FakeRecall())


@pytest.mark.parametrize("line, expected", GOOD)
def test_good_lines(line: str, expected: dict[str, Any]) -> None:
    parsed = parse(line)
    for name, value in expected.items():
        assert getattr(parsed.request, name) == value, name
    # everything the line did not mention keeps its default
    untouched = Request()
    for name in vars(untouched):
        if name not in parsed.given and name != "prompt":
            assert getattr(parsed.request, name) == getattr(untouched, name), name


@pytest.mark.parametrize("line, message", BAD)
def test_bad_lines(line: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse(line)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_every_switch_parses_by_every_name() -> None:
    samples = {Kind.INT: "60", Kind.FLOAT: "0.5", Kind.PATH: "x.png",
               Kind.VARIATIONS: "3:0.5", Kind.NEGATIVE: "blurry", Kind.LORAS: "detail:0.5"}
    for switch in SWITCHES:
        for name in switch.names:
            line = f"a -S 1 -I i.png {name}"
            if switch.field == "decode_intermediates":  # needs steps to decode
                line = f"a -S 1 -I i.png --save_intermediates 2 {name}"
            if switch.kind is Kind.HELP:
                assert parse(line).wants_help
                continue
            if switch.kind is Kind.CHOICE:
                line += f" {switch.choices[-1]}"
            elif switch.kind.takes_value:
                line += f" {samples[switch.kind]}"
            parsed = parse(line)
            if switch.kind is Kind.NEGATIVE:
                assert parsed.request.prompt == "a [blurry]", name
                continue
            assert switch.field in parsed.given, name
            if switch.field not in ("seed", "init_img"):
                assert getattr(parsed.request, switch.field) != getattr(Request(), switch.field)


@pytest.mark.parametrize("entry", UNSUPPORTED, ids=lambda e: e.names[0])
def test_every_unsupported_switch_is_refused(entry: Unsupported) -> None:
    for name in entry.names:
        with pytest.raises(RequestError, match="is not supported by dreamline; line skipped"):
            parse(f"a cat {name} 1")


def test_given_lists_what_the_line_set() -> None:
    parsed = parse("a cat -s 5 -S -1 --karras")
    assert parsed.given == {"prompt", "steps", "seed", "karras"}
    assert parse("-s 5").given == {"steps"}
    assert parse("").given == frozenset()


def test_defaults_are_overlaid_for_this_line_only() -> None:
    defaults = launch_defaults({"steps": "30", "width": 640, "sampler": "ddim", "cfg_scale": "9"})
    first = parse("a -s 10", defaults).request
    assert (first.steps, first.width, first.sampler, first.cfg_scale) == (10, 640, "ddim", 9.0)
    second = parse("a", defaults).request
    assert (second.steps, second.width) == (30, 640)
    assert defaults.steps == 30


def test_width_and_height_are_kept_as_given() -> None:
    request = parse("a -W 513 -H 99").request
    assert (request.width, request.height) == (513, 99)


def test_recall_needs_a_previous_command() -> None:
    with pytest.raises(RequestError, match="-S/--seed: -1 reuses the seed .* no previous command"):
        parse_line("a -S -1", Request())
    with pytest.raises(RequestError, match="-I/--init_img: -2 reuses the image .* no previous"):
        parse_line("a -I -2", Request())


def test_help_anywhere_after_the_prompt() -> None:
    for line in ("-h", "a cat -h", "a cat --help", "a -s 5 -h", "a --hel"):
        parsed = parse(line)
        assert parsed.wants_help, line
        assert parsed.request == Request()
    assert not parse("a cat").wants_help


@pytest.mark.parametrize("line, topic", [
    ("-h", ""), ("a cat -h", ""), ("-h all", "all"), ("a -s 5 -h img2img", "img2img"),
    ("--help=prompt", "prompt"), ("-h=output", "output"), ("a -h -s 5", ""),
    ("-h generation", "generation"), ("-h other", "other"), ("-h variations", "variations"),
])
def test_help_topic(line: str, topic: str) -> None:
    parsed = parse(line)
    assert parsed.wants_help and parsed.help_topic == topic


def test_escaped_space_before_a_switch_is_noted() -> None:
    """'a cat\\ -s2' is a shell escape (kept), but the swallowed switch is pointed out."""
    parsed = parse(r"a cat\ -s2 -S1")
    assert (parsed.request.prompt, parsed.request.steps) == ("a cat -s2", 50)
    assert parsed.notes == ("note: '\\ -s2' went into the prompt as text (the backslash escapes "
                            "the space); drop the backslash to use -s2 as a switch",)
    for line in (r"a\ b", r"my\ -x.png", r"a \ -s2", '"a \\ -s2"', "a cat -s2"):
        assert parse(line).notes == (), line


def test_negative_prompt_formats_as_brackets() -> None:
    """The Request holds one form of the negative prompt, so its command is the [ ] form."""
    from dreamline.format import format_command

    request = parse('a cat --negative_prompt "blurry, ugly" -S 3').request
    assert format_command(request).startswith('"a cat [blurry, ugly]" ')
    assert parse(format_command(request)).request == request


def test_tokenizer_marks_quoted_and_dash_words() -> None:
    words = tokenize("""a "-b c" -d 'e f' g's -"h" """)
    assert [(w.text, w.quoted, w.dash) for w in words] == [
        ("a", False, False), ("-b c", True, False), ("-d", False, True),
        ("e f", True, False), ("g's", False, False), ("-h", True, True)]
    assert [w.text for w in tokenize('""')] == [""]


@pytest.mark.parametrize("line, comment", [
    ("# a note", True), ("  // also", True), ("a cat # not a comment", False), ("", False),
    ("-s 5", False),
])
def test_is_comment(line: str, comment: bool) -> None:
    assert is_comment(line) is comment


@pytest.mark.parametrize("line", ["a cat -s ٣", "a cat -C ３", "a cat -S ১২", "a cat -f ０.5"])
def test_numbers_take_ascii_digits_only(line: str) -> None:
    with pytest.raises(RequestError, match="is not a"):
        parse_line(line, Request())


@pytest.mark.parametrize("line, expected", [
    ('a -A "DPM++ 2M Karras"', {"sampler": "k_dpmpp_2m", "schedule": "karras"}),
    ("a -A dpmpp_2m_sde", {"sampler": "k_dpmpp_2m_sde", "schedule": "model"}),
    ("a -A 'Euler a'", {"sampler": "k_euler_a", "schedule": "model"}),
    ("a -A k_dpmpp_sde --schedule exponential", {"sampler": "k_dpmpp_sde",
                                                  "schedule": "exponential"}),
    ("a -A unipc --schedule uniform", {"sampler": "unipc", "schedule": "model"}),
    ("a -A K_LMS", {"sampler": "k_lms"}),
])
def test_sampler_names_of_every_dialect_and_schedule_types(line: str,
                                                           expected: dict[str, str]) -> None:
    request = parse(line).request
    assert {name: getattr(request, name) for name in expected} == expected
