"""The lesson text never states a number that the executed notebook does not show.

Prose rots: a notebook's text quoted "99.2% accuracy" while its own output showed 99.41%, and a
module opened with "your report said AP 0.70" after the previous one showed 0.278. Every decimal and
every percentage in a Markdown cell (code spans, code blocks and diagrams excluded) must appear, at
the precision the text gives, among the outputs of the executed solution notebook (the one the
course conftest already runs, in fast mode), unless it is a definition listed in ``DEFINITIONS``.
A number that depends on the data belongs in a code cell's output, and the text refers to it
("the accuracy printed above"); a verdict that must hold belongs in an assertion in a code cell.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import Execution

#: Numbers the text defines rather than measures, per module: a rule's constant, not a result.
DEFINITIONS: dict[str, set[str]] = {
    # precision/recall are "0.0" by definition when undefined; 0.5 is predict's default threshold.
    "00_notebook_thinking": {"0.0", "0.5"},
    # the 70/30 split of the notebook habit; "0.00" is the amount a coerced text value becomes.
    "01_data_layer": {"70%", "30%", "0.00"},
    # 0.5 is the threshold the text says a bank should not take for granted.
    "02_training_layer": {"0.5"},
    # "0.00" is the amount a renamed field is silently scored with.
    "03_deployment_layer": {"0.00"},
    # The SLO's terms (99% within 50 ms, at most 0.1% errors, 1 slow request in 50 = 2%), the teaching
    # server's 0.5 s freeze, 50.4 ms as the example of locust's rounding, 80% busy as the example
    # utilisation, and the model answer's load-test plan, which states its own mix (90/10), headroom
    # (30%), tolerance (5%) and stop conditions (1% errors, 80% disk): all definitions, none measured.
    "04_load_and_latency": {"99%", "0.1%", "2%", "0.5", "50.4", "80%", "90%", "10%", "30%", "5%", "1%"},
    # The SRE workbook's page rule (burn rate 14.4: 2% of a 30-day budget in an hour) and the example
    # SLO of 99% good requests with its 1% error budget: definitions, none measured.
    "05_monitoring": {"14.4", "2%", "99%", "1%"},
    # The SLO of the capstone's error budget (99% successful requests): a definition, not a measurement.
    "07_capstone": {"99%"},
    # The rollout plan's target (100% of the traffic) and the model answer's own ladder (1/5/25/50/100%) and
    # stop conditions (PSI 0.25, overlap 0.5, alert ratio 0.5-2, 0.1% errors, sample-ratio p 0.001): definitions.
    "06_maintenance": {"100%", "1%", "5%", "25%", "50%", "0.25", "0.5", "0.1%", "0.001"},
}

_CODE = re.compile(r"```.*?```|`[^`\n]*`|\$[^$\n]*\$", flags=re.DOTALL)
# Dotted numbers with more than one dot are addresses or versions (127.0.0.1, 3.1.1), not claims.
_DOTTED = re.compile(r"\d+(?:\.\d+){2,}")
_CLAIM = re.compile(r"(?<![\w.\-])(\d+\.\d+|\d+(?=\s?%))(\s?%)?")
_OUTPUT_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:[eE]-?\d+)?")


def claims(markdown: str) -> list[str]:
    """Decimals and percentages stated in a Markdown text, as written (``"0.70"``, ``"99.2%"``)."""
    prose = _DOTTED.sub(" ", _CODE.sub(" ", markdown))
    return [value + ("%" if percent else "") for value, percent in _CLAIM.findall(prose)]


def output_numbers(nb: nbformat.NotebookNode) -> set[float]:
    """Every number in the text outputs (streams, plain text, HTML, Markdown) of an executed notebook."""
    numbers = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts = [output.get("text", "")] + [
                output.get("data", {}).get(kind, "") for kind in ("text/plain", "text/html", "text/markdown")
            ]
            for text in texts:
                for match in _OUTPUT_NUMBER.findall(text if isinstance(text, str) else "".join(text)):
                    try:
                        numbers.add(float(match.replace(",", "")))
                    except ValueError:  # "1,2," and the like: not a number
                        continue
    return numbers


def is_shown(claim: str, numbers: set[float]) -> bool:
    """Whether some output number, rounded as the claim is written, gives the claim.

    A percentage also matches a fraction (``99.4%`` matches an output of ``0.9941``).
    """
    percent = claim.endswith("%")
    value = claim.rstrip("%").strip()
    digits = len(value.partition(".")[2])
    target = round(float(value), digits)
    for number in numbers:
        for candidate in (number, number * 100) if percent else (number,):
            if round(candidate, digits) == target:
                return True
    return False


def unsupported_claims(nb: nbformat.NotebookNode, allowed: set[str]) -> list[str]:
    """``"cell-id: claim"`` for each number in the text that no output shows and no definition allows."""
    numbers = output_numbers(nb)
    return [
        f"{cell.get('id', index)}: {claim}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for claim in claims(cell.source)
        if claim not in allowed and not is_shown(claim, numbers)
    ]


def _notebook(markdown: str, output: str) -> nbformat.NotebookNode:
    code = nbformat.v4.new_code_cell("print(...)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown), code])


def test_claims_skip_code_diagrams_and_addresses() -> None:
    text = "AP 0.70 and 99.2% here; `0.29 * 100` and 127.0.0.1 and v3.1.1 are not claims.\n```mermaid\nA[0.5]\n```"
    assert claims(text) == ["0.70", "99.2%"]


def test_a_number_the_outputs_contradict_is_reported() -> None:
    nb = _notebook("Your manager reads 99.2% accuracy; the model scored AP 0.28.", "Test accuracy: 99.41%\nAP 0.278\n")
    reported = [line.partition(": ")[2] for line in unsupported_claims(nb, set())]
    assert reported == ["99.2%"], "99.2% is not what the output shows (99.41%); AP 0.28 is 0.278 rounded"
    assert unsupported_claims(nb, {"99.2%"}) == [], "an allowed definition is not reported"


def test_rounding_and_fractions_count_as_shown() -> None:
    nb = _notebook("About 99.4% accurate, AP 0.28, recall 23%.", "accuracy 0.9941  AP 0.2781  recall 0.2328\n")
    assert unsupported_claims(nb, set()) == []


@pytest.mark.slow
def test_prose_matches_the_executed_outputs(assignment: str, executed_solution: Execution) -> None:
    if executed_solution.error is not None:
        pytest.skip("the solution did not run; test_execution reports why")
    nb = nbformat.read(executed_solution.output, as_version=4)
    wrong = unsupported_claims(nb, DEFINITIONS.get(assignment, set()))
    assert not wrong, (
        f"{assignment}: the text states numbers that no output of the executed solution "
        f"(parameters {executed_solution.parameters}) shows: {wrong}. Print the number in a code cell and "
        "refer to it ('the accuracy printed above'), check the claim with an assertion in a code cell, or, "
        "for a constant the text defines, add it to DEFINITIONS in tests/course/test_prose.py."
    )
