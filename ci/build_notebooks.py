"""Regenerate the committed exercise notebooks of every installed module of this repository.

    python ci/build_notebooks.py            # rewrite modules/*/notebooks/<lesson>.ipynb
    python ci/build_notebooks.py --check    # exit 1, listing them, when any is stale

A module belongs to this repository when its declared ``path`` is a folder here. Every
lesson source (``src/<package>/lessons/*.py``) is the single source of truth; the
notebooks are built from it deterministically, so a committed notebook that differs
from a fresh build is stale. Notebooks in ``notebooks/`` that no lesson produces are
reported as orphans.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook is stale")
    parser.add_argument("--repo", type=Path, default=REPO, help="repository root (default: this one)")
    parser.add_argument("modules", nargs="*", help="module names (default: every installed module)")
    args = parser.parse_args(argv)

    from workshop._plugins import registry
    from workshop.lessons import LessonError, build, notebook_text

    reg = registry()
    names = args.modules or list(reg.modules)
    stale: list[str] = []
    problems: list[str] = []
    written = 0
    for name in names:
        if name not in reg.modules:
            problems.append(f"{name}: not installed (or broken)")
            continue
        decl = reg.modules[name]
        if not decl.path or not (args.repo / decl.path).is_dir():
            print(f"skip {name}: its path {decl.path!r} is not a folder of {args.repo}")
            continue
        folder = args.repo / decl.path / "notebooks"
        expected = set()
        for lesson in decl.lessons:
            target = folder / f"{lesson.id}.ipynb"
            expected.add(target.name)
            try:
                text = notebook_text(build(decl, lesson).exercise)
            except LessonError as exc:
                problems.append(str(exc))
                continue
            current = target.read_text(encoding="utf-8") if target.is_file() else None
            if current == text:
                continue
            rel = target.relative_to(args.repo)
            if args.check:
                stale.append(f"{rel}" + (" (missing)" if current is None else ""))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8", newline="\n")
                written += 1
                print(f"wrote {rel}")
        if folder.is_dir():
            for orphan in sorted(p.name for p in folder.glob("*.ipynb")):
                if orphan not in expected:
                    problems.append(f"{(folder / orphan).relative_to(args.repo)}: no lesson produces it (delete it?)")
    for b in reg.broken:
        if not args.modules or b.name in args.modules:
            problems.append(f"{b.name}: broken plugin: {b.error}")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if args.check:
        if stale:
            print("Stale notebooks (regenerate with: python ci/build_notebooks.py):", file=sys.stderr)
            for s in stale:
                print(f"  {s}", file=sys.stderr)
        elif not problems:
            print("All committed notebooks are fresh.")
    elif not written:
        print("All committed notebooks were already fresh.")
    return 1 if stale or problems else 0


if __name__ == "__main__":
    sys.exit(main())
