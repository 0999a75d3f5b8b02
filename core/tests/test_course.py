"""Course manifests: parsing, the agenda with clock times, `workshop course show`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from workshop import Check, Lesson, ModuleDeclaration
from workshop._course import CourseError, load_course, parse_course, render_agenda
from workshop.cli import main

SCIPY = Path(__file__).resolve().parents[2] / "courses" / "scipy.toml"


def _decl(name: str, minutes: int, lessons=(), checks=()) -> ModuleDeclaration:
    return ModuleDeclaration(name=name, title=f"The {name} module", summary="", minutes=minutes,
                             package=f"workshop_{name}", lessons=list(lessons), checks=list(checks))


def test_the_scipy_course_lists_the_workshop_in_order():
    course = load_course(SCIPY)
    assert course.modules == ["intro", "astro", "protein", "wrapup"]
    by_module = {i.module: i.minutes for i in course.items if i.module}
    assert by_module["intro"] == 60 and by_module["wrapup"] == 15
    assert sum(i.is_break for i in course.items) >= 2
    assert course.start is not None


def test_the_agenda_has_clock_times_lessons_and_totals():
    course = parse_course('''
        title = "Two modules"
        start = "09:00"
        [[agenda]]
        module = "alpha"
        minutes = 50
        [[agenda]]
        break = "Coffee"
        minutes = 15
        [[agenda]]
        module = "beta"
    ''')
    modules = {
        "alpha": _decl("alpha", 40, [Lesson("01_a", "First", "lessons/01_a.py", minutes=20)],
                       [Check("c1", "x.y:z", lesson="01_a"), Check("c2", "x.y:z", lesson="01_a")]),
        "beta": _decl("beta", 35),
    }
    lines, missing = render_agenda(course, modules=modules)
    text = "\n".join(lines)
    assert missing == []
    assert "09:00 -> 09:50  alpha         50 min  The alpha module  [0/2 checks]" in text
    assert "- 01_a (20 min): First" in text
    assert "09:50 -> 10:05  (Coffee)      15 min" in text
    assert "10:05 -> 10:40  beta          35 min" in text  # minutes from the module's declaration
    assert lines[-1] == "Ends 10:40: 1 h 40 min in all (1 h 25 min of modules, 15 min of breaks)."
    later, _ = render_agenda(course, start="13:30", modules=modules)
    assert "13:30 -> 14:20  alpha" in "\n".join(later)


def test_a_module_that_is_not_installed_is_named_with_how_to_get_it():
    course = parse_course('title = "t"\n[[agenda]]\nmodule = "gamma"\n[[agenda]]\nmodule = "delta_x"\nminutes = 10\n')
    lines, missing = render_agenda(course, modules={})
    text = "\n".join(lines)
    assert missing == ["gamma", "delta_x"]
    assert "pip install workshop-delta-x" in text
    assert "--:-- -> --:--  gamma" in text and "Known so far: 10 min of modules" in text


@pytest.mark.parametrize("text, expected", [
    ('[[agenda]]\nmodule = "a"\n', "needs a title"),
    ('title = "t"\n', "needs an agenda"),
    ('title = "t"\n[[agenda]]\nmodule = "a"\nbreak = "b"\nminutes = 5\n', "exactly one of"),
    ('title = "t"\n[[agenda]]\nbreak = "b"\n', "a break needs its minutes"),
    ('title = "t"\n[[agenda]]\nmodule = "a"\nminutes = -5\n', "positive whole number"),
    ('title = "t"\n[[agenda]]\nmodule = "a"\nminutes = 1.5\n', "positive whole number"),
    ('title = "t"\nstart = "25:00"\n[[agenda]]\nmodule = "a"\n', "not a time"),
    ('title = "t"\n[[agenda]]\nmodule = "Astro Module"\n', "not a module name"),
    ('title = "t"\n[[agenda]]\nmodule = "a"\nlength = 3\n', "unknown key(s) length"),
    ('title = "t"\nmodules = ["a"]\n', "unknown key(s) modules"),
    ('title = "t\n', "not valid TOML"),
])
def test_malformed_manifests_say_what_to_fix(text, expected):
    with pytest.raises(CourseError) as info:
        parse_course(text, where="my.toml")
    assert expected in str(info.value) and str(info.value).startswith("my.toml")


def test_course_show_command(tmp_path):
    res = CliRunner().invoke(main, ["course", "show", str(SCIPY), "--start", "08:00"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("JAX & Generative AI for Science")
    assert "08:00 -> 09:00  intro" in res.output
    assert "wrapup" in res.output and "(Coffee)" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n')
    res = CliRunner().invoke(main, ["course", "show", str(bad)])
    assert res.exit_code == 2 and "needs an agenda" in res.output
    res = CliRunner().invoke(main, ["course", "show", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "cannot read the course file" in res.output


LESSON_PLUGIN = '''
from workshop import hookimpl, ModuleDeclaration, Lesson
@hookimpl
def workshop_module():
    return ModuleDeclaration(name="coursemod", title="Course module", summary="", minutes=10,
                             package="workshop_coursemod", lessons=[Lesson("01_one", "One", "lessons/01_one.py")])
'''


def test_course_lessons_writes_each_installed_modules_notebooks(fake_dist, tmp_path):
    fake_dist({"coursemod": ("workshop_coursemod_plugin", LESSON_PLUGIN)},
              extra_modules={"workshop_coursemod/__init__.py": "",
                             "workshop_coursemod/lessons/01_one.py": "# %%\ndef f():\n    # BEGIN SOLUTION: return 1\n"
                                                                     "    return 1\n    # END SOLUTION\n"})
    manifest = tmp_path / "c.toml"
    manifest.write_text('title = "c"\n[[agenda]]\nmodule = "coursemod"\n[[agenda]]\nmodule = "absent"\nminutes = 5\n')
    res = CliRunner().invoke(main, ["course", "lessons", str(manifest), "--to", str(tmp_path / "out"), "--solutions"])
    assert res.exit_code == 1  # one module of the course is not installed
    assert "absent: not installed (pip install workshop-absent)" in res.output
    assert "coursemod: 2 notebooks" in res.output and "(2 written)" in res.output
    assert (tmp_path / "out" / "coursemod" / "01_one.ipynb").is_file()
    assert (tmp_path / "out" / "coursemod" / "01_one_solution.ipynb").is_file()
