"""Generators of large, valid LwaS programs for benchmarks (deterministic for a given size)."""
from __future__ import annotations


def program(lines: int) -> str:
    """About `lines` lines of realistic LwaS: axioms, records, enums, functions, rules, tests."""
    out = ["module generated", "", "axiom root = 1.0", "enum Kind { Payment, Refund, Expense, Revenue }", ""]
    i = 0
    while len(out) < lines:
        out += [
            f"/// Axiom group {i}.",
            f"axiom a{i} = 0.9 requires root",
            f"axiom b{i} = 0.5..0.8 requires a{i}",
            f"record R{i} {{",
            "  id: text",
            "  amount: money",
            "  kind: Kind",
            "  weight: float",
            "}",
            f"fn f{i}(n: int, xs: [float]) -> float {{",
            "  var total = 0.0",
            "  for k in 0..n {",
            "    if k % 3 == 0 {",
            "      total += float(k) * 1.5",
            "    } else {",
            "      total -= 0.25",
            "    }",
            "  }",
            "  for x in xs {",
            "    total += x",
            "  }",
            "  return total",
            "}",
            f"fn g{i}(r: R{i}) -> money = match r.kind {{",
            "  Payment | Revenue => r.amount",
            "  Refund | Expense => -r.amount",
            "}",
            f"rule ok{i}(r: R{i}, cpu: float) -> truth =",
            f"  r.amount > 0.00 USD and not ramp(cpu, 70.0, 90.0) requires b{i}",
            "",
        ]
        i += 1
    return "\n".join(out) + "\n"


def axiom_program(n: int) -> str:
    """n axioms, each requiring up to two earlier ones (as source text)."""
    out = ["axiom x0 = 1.0"]
    for k in range(1, n):
        premises = ", ".join(f"x{j}" for j in {k - 1, k // 2})
        out.append(f"axiom x{k} = {0.99 ** (k % 50):.4f} requires {premises}")
    return "\n".join(out) + "\n"
