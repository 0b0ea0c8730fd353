"""The registry of diagnostic codes: a title and a long explanation for each (`lwasc explain`).

Codes are stable: never reuse a retired code. E00xx syntax, E01xx names and modules,
E02xx truth consistency, E03xx types, W01xx warnings.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    title: str
    explanation: str


_TABLE = [
    # ------------------------------------------------------------------ syntax
    ("E0001", "syntax error", """
The parser met a token it did not expect here. The message lists what it expected.
Statements end at the end of a line (or at `;`), blocks use `{ }`, and a line continues
after an operator, `=`, `,` or an opening bracket:

    rule valid(tx: Transaction) -> truth =
      tx.amount > 0.00 USD and tx.amount <= MAX_TRANSACTION

After a syntax error the parser skips to the next item (`fn`, `rule`, `axiom`, ...) at the
start of a line, so one mistake gives one error."""),
    ("E0002", "unexpected character", """
A character that no LwaS token starts with. LwaS writes logic with words (`and`, `or`,
`not`), not `&&`, `||` or `!`; comments start with `//`."""),
    ("E0003", "unterminated text literal", """
A text literal opened with `"` was not closed on the same line. Close it, or write a line
break inside it as `\\n`:

    let greeting = "hello\\nworld\""""),
    ("E0004", "invalid number literal", """
A number that LwaS cannot represent: an `int` literal outside the signed 64-bit range
(-9223372036854775808 ..= 9223372036854775807), a float literal that is not finite
(`1e999`), or a money literal with more minor units than a 64-bit integer holds."""),
    ("E0005", "source file is not valid UTF-8", """
LwaS source files are UTF-8 text. The file holds a byte sequence that is not UTF-8 (often a
file saved as Latin-1 or Windows-1252, or a binary file given by mistake); the error gives the
byte offset of the first bad byte and its line and column. Convert the file:

    iconv -f LATIN1 -t UTF-8 old.lwas > new.lwas

A UTF-8 byte order mark (EF BB BF) at the start of a file is accepted and ignored;
`lwasc fmt` removes it."""),
    ("E0006", "nesting too deep", """
An item's syntax tree is nested more than 12,000 levels deep. The compiler refuses it (and
leaves the item out) instead of running out of stack, like clang's `-fbracket-depth` or Go's
nesting limit. Each operator of a chain counts one level, because `a + b + c` is `(a + b) + c`;
parentheses alone do not count; a nested `if`, a block, a call with its argument, an array
literal and a `match` arm each count one or two.

Code written by hand never comes near the limit; generated code may. Split the expression:

    let part1 = x1 + x2 + ... + x5000
    let part2 = x5001 + ... + x10000
    return part1 + part2

or sum an array (`for x in xs { total += x }`), or move nested parts into functions."""),
    # ------------------------------------------------------------------ names and modules
    ("E0101", "undefined name", """
A name is used that is not declared in this scope, in this module, among its imports, or
among the built-ins (`len`, `float`, `int`, `ramp`, `clamp01`, ...). Check the spelling, or
import the module that declares it (`import std.stats`) and use it qualified
(`stats.mean(xs)`). Only `pub` items of another module can be used. A bare variant name that
two enums of the module declare is ambiguous: qualify it (`TxType.Payment`)."""),
    ("E0102", "duplicate definition", """
Two items in one module (or two variables in one block, or two fields of one record, or two
variants of one enum) have the same name. Each name must mean one thing:

    axiom twice = 0.3
    axiom twice = 0.4      // error[E0102]

Rename or remove one of them."""),
    ("E0103", "module not found", """
An `import` names a module that does not exist. `import std.NAME` looks in the standard
library (`std.money`, `std.stats`, `std.fuzzy`, `std.entropy`, `std.time`); `import NAME`
looks for `NAME.lwas` beside the importing file, and `import a.b` for `a/b.lwas`."""),
    ("E0104", "import cycle", """
Modules import each other in a cycle (a imports b, b imports a). Modules form a tree of
dependencies; move the shared declarations into a third module both can import. The error
prints the whole cycle."""),
    ("E0105", "unknown type", """
A type name is neither a built-in type (`int`, `float`, `bool`, `truth`, `money`, `text`,
`time`, `[T]`) nor a record or enum declared in this module or an imported one
(`models.Transaction`)."""),
    ("E0106", "misplaced module declaration", """
`module NAME` may appear once, as the first item of a file, and names the file's module.
Imports come after it and before the other items."""),
    # ------------------------------------------------------------------ truth
    ("E0201", "truth value out of range", """
A truth value is a finite number in [0, 1]; an interval `lo..hi` needs 0 <= lo <= hi <= 1.

    axiom too_much = 1.5   // error[E0201]

Use 1.0 for certain truth and 0.0 for certain falsehood."""),
    ("E0202", "undefined premise", """
An axiom (or a rule) `requires` or `contradicts` a name that is not an axiom. Premises name
axioms declared in this module or, qualified, in an imported one (`ethics.truth`)."""),
    ("E0203", "axiom is more certain than its premises", """
`a requires d` means t(a) <= t(d): an axiom is never more certain than what it rests on
(Gödel's weakest link). The checker follows the chain of premises down to the weakest one
and prints it:

    axiom truth = 1.0
    axiom decree = 0.4 requires truth
    axiom law = 0.6 requires decree      // error[E0203]: law (0.6) rests on decree (0.4)

Lower the axiom to the bound the help line gives, or raise the weakest premise."""),
    ("E0204", "contradicting axioms are too certain", """
`a contradicts b` means t(a) + t(b) <= 1 (Łukasiewicz): two claims that exclude each other
cannot both be very true.

    axiom freedom = 0.8 requires truth
    axiom order = 0.7 requires truth contradicts freedom   // 0.7 + 0.8 > 1

Lower one of them so that the sum is at most 1."""),
    ("E0205", "cycle of premises", """
Axioms that require each other in a cycle rest on nothing: a -> b -> c -> a. The error prints
the whole cycle. Break it by letting one of them rest on something outside the cycle."""),
    ("E0206", "no truth values satisfy the axioms", """
With intervals (`axiom hope = 0.5..0.9`) an axiom may take any value in its range. The
program is consistent when some choice of values satisfies every `requires` and `contradicts`
at once. When none does, the checker prints a smallest set of constraints that cannot hold
together (dropping any one of them would make it satisfiable):

    axiom lo = 0.6..0.9
    axiom hi = 0.1..0.7 contradicts lo
    axiom top = 0.7 requires hi          // top needs hi >= 0.7, so lo <= 0.3

Widen an interval or lower a claim named in the chain."""),
    ("E0207", "axiom has neither a value nor premises", """
An axiom without a value holds exactly its weakest premise (`axiom care requires freedom,
hope`). One with neither a value nor premises means nothing: give it a value
(`axiom x = 1.0`) or premises."""),
    ("E0208", "rule requires something that is not an axiom", """
A rule's `requires` clause caps its value by the effective truth of axioms. It must name
axioms, not rules, functions or constants."""),
    # ------------------------------------------------------------------ types
    ("E0301", "mismatched types", """
An expression has a different type from the one its place needs: an argument, a return
value, an assignment, a `let` with a declared type, or a condition of `if`, `while` or
`assert` (always `bool`: compare a truth with a threshold, `x >= 0.5`).
LwaS converts implicitly only `bool` to `truth` and `truth` to `float`; write other
conversions out: `float(n)`, `int(x)`, `clamp01(x)`. A float literal in [0, 1] may stand for
a truth (`-> truth = 0.5`), but an int literal is never a float: write `2.0`.

Functions, rules, records, enums and modules are not values: call a function (`f(x)`),
build a record (`Point(x: 1.0, y: 2.0)`), name a variant (`TxType.Payment`)."""),
    ("E0302", "wrong number of arguments", """
A function, rule or built-in is called with more or fewer arguments than it declares, or a
named argument (`ramp(x, lo: 1.0, hi: 2.0)`) names no parameter, repeats one, or comes
before a positional argument."""),
    ("E0303", "not callable", """
Only functions, rules and built-ins can be called; a variable, constant, axiom, field,
enum variant or module cannot. A record type is "called" with named fields to build one:
`Point(x: 1.0, y: 2.0)`."""),
    ("E0304", "no such field", """
A record has no field of this name, or `.` was used on a value that is not a record (or a
module). The message lists the fields that exist."""),
    ("E0305", "non-exhaustive match", """
A `match` on an enum must handle every variant (or end with `_ =>`). The message names
the variants that are missing; `lwas-lsp` offers a quick fix that adds them. A `match` on
an `int` or `text` needs a final `_ =>` arm; one on a `bool` may list `true` and `false`."""),
    ("E0306", "missing return", """
A function with a result type must return a value on every path. The checker found a path
that reaches the end of the body without `return`. Add a final `return`, or an `else`
branch that returns. An `if` with an `else`, a `match` statement and `while true` (without a
`break`) count as returning when all their branches do."""),
    ("E0307", "cannot assign to an immutable binding", """
`let` binds once; `var` may be reassigned. Parameters, constants and loop variables are
immutable too.

    let total = 0
    total += 1     // error[E0307]: declare it `var total = 0`"""),
    ("E0308", "currency mismatch", """
`money + money`, `money - money` and comparisons between money need the same currency.
When both currencies are known at compile time, mixing them is this error; otherwise it is
a runtime error. Convert explicitly with a declared rate."""),
    ("E0309", "unknown currency", """
A money literal names a code that is not an ISO 4217 currency (`12.50 USD`, `500 JPY`,
`1.250 KWD`)."""),
    ("E0310", "too many decimals for the currency", """
Money is exact: an amount in integer minor units. A literal may not have more decimals than
its currency's exponent (USD 2, JPY 0, KWD 3), so `99.999 USD` and `1.5 JPY` are rejected."""),
    ("E0311", "invalid operand types", """
The operator is not defined for these operand types: for example `text * int`,
`money * money`, `not 3`, `xs[0]` on a non-array, `1 + 2.0` (int and float never mix: write
`1.0 + 2.0` or `float(n) + x`), or `money * float` (scaling money by a float must round, so
it goes through an explicit call: `scale(m, 1.1)`). `money / int` is not defined either:
dividing money must decide where the remainder goes."""),
    ("E0312", "unknown pattern", """
A `match` arm names something that is not a variant of the matched enum, matches a
variant (or a literal value) twice, or uses a pattern of the wrong kind: a literal against an
enum, a variant or a literal of another type against an `int`, `text` or `bool`."""),
    ("E0313", "invalid assignment target", """
Only variables, record fields and array elements can be assigned to."""),
    ("E0314", "`break` or `continue` outside a loop", """
`break` and `continue` are allowed only inside `while` or `for`."""),
    ("E0315", "invalid record literal", """
A record literal must name every field exactly once, and only fields the record declares:

    record Point { x: float, y: float }
    let p = Point(x: 1.0, y: 2.0)"""),
    ("E0316", "constant expression required", """
A `const` must be computable at compile time: literals, operators, other constants, enum
variants, records, arrays and the pure built-ins. Calls to functions and rules are not
allowed, and a constant may not depend on itself."""),
    ("E0317", "`return` outside a function", """
`return` appears in a `test` block or where no function encloses it; tests end when their
block ends."""),
    ("E0318", "type annotation needed", """
The checker cannot tell the type of an expression from the expression alone: an empty array
`[]` with nothing saying what it holds. Annotate the variable, or use it where the type is
known (an argument, a return value):

    let xs: [int] = []"""),
    ("E0319", "recursive record has infinite size", """
A record contains itself by value, directly or through other records, so no value of it
could ever be built or stored:

    record Node { value: int, next: Node }    // error[E0319]

Hold the inner values in an array, which may be empty: `children: [Node]`."""),
    ("E0320", "not yet supported by the native back end", """
The program is valid LwaS (`lwasc check` accepts it), but it uses a feature that the native
code generator cannot compile yet, so `lwasc build`, `lwasc run` and `lwas.compile` stop
here. The message names the feature and the span points at its first use. This is a
limitation of this compiler version, not a mistake in the program: rewrite that part with
features the back end supports, or check the release notes of a newer `lwasc`."""),
    ("E0321", "invalid currency field", """
`amount: money in currency` declares a money field whose JSON form is a bare number (`99.99`),
its currency being the value of the record's `currency` field (`"USD"`), as many payment APIs
write it. The field must be `money` and the named field a `text` field of the same record:

    record Transaction {
      id: text
      amount: money in currency
      currency: text
    }"""),
    ("E0322", "invalid map key type", """
A map `{K: V}` is kept in ascending key order, so its keys must have an exact, total order:
`int`, `text`, `time`, `bool` or an enum (in declaration order). A `float` (NaN, -0.0),
`money` (currencies do not compare), a record, an array or a map cannot key a map:

    var by_id: {text: Order} = {}        // key by an id
    var by_day: {int: Day} = {}           // or by a number"""),
    ("E0323", "invalid field default", """
`field: T = value` gives the value a ledger entry written before the field existed reads
as, and the value a record literal that leaves the field out gets. It must be a constant of
the field's type: a literal, a `const`, an enum variant, `[]` or `{}`:

    record Day {
      day: int
      refunds: money = 0.00 USD
      tags: [text] = []
    }"""),
    # ------------------------------------------------------------------ services
    ("E0401", "unknown ledger", """
An `append` or an `on` block names a ledger the service does not declare. Declare each
ledger once in the service, with the record type of its entries and the field that keys them:

    service economy {
      ledger transactions: Transaction by id
      on transactions(tx) { state.count += 1 }
    }"""),
    ("E0402", "the state changes only through the ledger", """
A service's state is a fold of its `on` blocks over its ledgers: that is what lets the
runtime rebuild it on start by replaying the ledger, and what makes a crash lose nothing.
So a route handler cannot assign the state (it appends an entry, and the entry's `on` block
moves the state), an `on` block cannot append or `return` (it runs again on every replay),
a `get` route cannot append (it must not write), and nothing may redeclare `state`:

    post "/transactions" (tx: Transaction) -> Receipt {
      append transactions(tx)                 // the `on transactions` block runs here
      return Receipt(id: tx.id, balance: state.balance)
    }"""),
    ("E0403", "invalid route", """
A route is `METHOD "/path/{param}" (params) -> Response { ... }`. Every `{name}` in the path
is bound to the parameter `name` (an `int`, `text` or enum); a `post`, `put`, `patch` or
`delete` route may take one more parameter, a record: the JSON request body. A `get` route
takes no body. Each method and path is declared once, each route has a response type, and
services live in the root file (the one given to `lwasc serve`)."""),
    ("E0404", "invalid route guard", """
A route's `requires` clause is a rule (or any truth-valued call) compared with a threshold
in [0, 1]: `requires valid_amount(tx) >= 0.9`. Before the handler runs, the runtime
computes the rule; below the threshold the request is refused with 422, naming the rule and
its truth, and nothing is written."""),
    ("E0405", "invalid ledger", """
A ledger holds records and is keyed by one of their fields, a `text` or an `int`: the key
makes appends idempotent (the same key with the same entry is a retry and changes nothing;
with another entry it is a conflict, 409).

    record Transaction { id: text, amount: money }
    service economy { ledger transactions: Transaction by id }"""),
    ("E0406", "invalid timer", """
`every "INTERVAL" { ... }` runs its block on a timer, through the same writer as requests: it
may append to the service's ledgers (its `on` blocks then move the state) and read the host
(`now()`, `cpu_percent()`, ...). The interval is a whole number of `ms`, `s`, `m` or `h`, at least
10ms, and the block returns no value:

    every "10s" {
      append samples(Sample(at: micros(now()), cpu: cpu_percent()))
    }"""),
    ("E0407", "external call outside a route or timer", """
An `extern fn` is provided by the runtime (a connector: Stripe, an HTTP call to another
service), so its result depends on the world outside the program. It may be called only in a
route handler or a timer (`every`), where the runtime runs the code off the ledger's writer and
commits each `append` as it happens. Anywhere else the call is refused: in an `on` block it would
make the state something a replay cannot rebuild; in a guard, a function, a rule or a test it
would hide I/O behind what reads as a pure computation.

    extern fn create_intent(amount: money, key: text, what: text) -> Intent = "stripe.create_payment_intent"

    service payment {
      post "/payments/intent" (req: IntentRequest) -> IntentReply {
        let pi = create_intent(req.amount, req.key, "order")   // allowed: a route handler
        ...
      }
    }

Pass the result on as a value (to functions, or appended to a ledger) instead."""),
    # ------------------------------------------------------------------ warnings
    ("W0101", "unused item", """
A private item (function, rule, constant, record, enum) of an imported module is declared
but never used in its module, nor exported. Uses inside its own body (recursion) do not
count. Items of the root module are the program's exports and are never reported; nor are
axioms and tests: they are meant to stand alone."""),
    ("W0102", "unused import", """
A module is imported but nothing from it is used. Remove the import."""),
    ("W0103", "unused variable", """
A local variable (`let` or `var`) is bound but never read; assigning to it does not count
as reading it. Remove it, or prefix its name with `_`. Parameters are not reported."""),
    ("W0104", "unreachable code", """
A statement follows a `return`, `break` or `continue` (or a statement all of whose paths
end in one) in the same block and can never run. A `match` arm after a `_` arm is also
unreachable."""),
    ("W0105", "bidirectional control character in a comment or text literal", """
A comment or a text literal contains an invisible Unicode control that changes the display
order of text: U+202A..U+202E (embeddings and overrides), U+2066..U+2069 (isolates), U+200E,
U+200F or U+061C (marks). Editors and code reviews then show the line in a different order
from the one the compiler reads, so a comment can seem to end early or code can seem to be
commented out (the "Trojan Source" attack, CVE-2021-42574):

    // check access <U+202E> } <U+2066> if is_admin <U+2069> <U+2066> begin

(each `<U+...>` stands for the invisible character itself).

Remove them unless they are meant to be there. Outside comments and text literals they are
not allowed at all (E0002). `lwasc fmt` never removes them, and diagnostics print each as
U+FFFD so the terminal does not reorder the line it shows."""),
]

CODES: dict[str, Code] = {c: Code(c, t, e.strip("\n")) for c, t, e in _TABLE}


def explain(code: str) -> str | None:
    entry = CODES.get(code.upper())
    if entry is None:
        return None
    return f"{entry.code}: {entry.title}\n\n{entry.explanation}\n"
