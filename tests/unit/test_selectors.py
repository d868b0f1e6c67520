import pytest

from chaosplane.selectors import Operator, SelectorError, parse_selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app=web,tier=front", {"app": "web", "tier": "front"}, True),
        ("app=web,tier=front", {"app": "web", "tier": "back"}, False),
        ("app!=web", {"app": "api"}, True),
        ("app!=web", {}, True),  # as in Kubernetes: a missing key satisfies !=
        ("app!=web", {"app": "web"}, False),
        ("env in (prod, staging)", {"env": "staging"}, True),
        ("env in (prod,staging)", {"env": "dev"}, False),
        ("env notin (prod)", {"env": "dev"}, True),
        ("env notin (prod)", {}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("chaos", {"chaos": ""}, True),
        ("chaos", {}, False),
        ("!protected", {}, True),
        ("!protected", {"protected": "yes"}, False),
        ("aws:cloudformation:stack-name=shop", {"aws:cloudformation:stack-name": "shop"}, True),
        ("app=web, env in (a,b), !protected", {"app": "web", "env": "b"}, True),
    ],
)
def test_selector_matches_like_kubernetes(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "   ",
        "app=",
        "=web",
        "app=web,",
        "env in ()",
        "env in (a",
        "env in a)",
        "app=w b",
        "a b",
        "app=(x)",
    ],
)
def test_bad_selectors_are_rejected_with_a_reason(selector: str) -> None:
    # "app=" means "app is the empty string" in Kubernetes and is valid; everything else here is not.
    if selector == "app=":
        assert parse_selector(selector).requirements[0].values == ("",)
        return
    with pytest.raises(SelectorError):
        parse_selector(selector)


def test_equalities_and_required_keys_are_what_a_server_side_filter_can_use() -> None:
    selector = parse_selector("app=web,env in (a,b),tier!=db,chaos,!protected")
    assert selector.equalities() == {"app": ("web",), "env": ("a", "b")}
    assert selector.required_keys() == ["chaos"]
    assert [r.operator for r in selector.requirements] == [
        Operator.EQUALS,
        Operator.IN,
        Operator.NOT_EQUALS,
        Operator.EXISTS,
        Operator.DOES_NOT_EXIST,
    ]
