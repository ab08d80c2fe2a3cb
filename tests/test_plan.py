"""provision.plan: the plays of every playbook and the tasks each can announce (pure, fast).

The counts are checked against what Ansible really announces in tests/test_progress_pty.py
(real runs under a pty); here: every project playbook has a plan, its play names are the
names Ansible shows, and the rules (imports, includes, argument specs, meta, rescue,
unselected bootstrap components) on small playbooks written for the test.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.paths import PLAYBOOKS_DIR
from provision.plan import PlayPlan, playbook_plan
from provision.progress import skip_unselected, task_position


def _play_names(path: Path) -> list[str]:
    names: list[str] = []
    for play in yaml.safe_load(path.read_text()):
        if "ansible.builtin.import_playbook" in play:
            names += _play_names(path.parent / play["ansible.builtin.import_playbook"])
        else:
            names.append(play["name"])
    return names


def test_every_project_playbook_has_a_plan_with_its_play_names():
    books = sorted(PLAYBOOKS_DIR.glob("*.yml"))
    assert len(books) >= 15
    for book in books:
        plan = playbook_plan(book)
        assert [p.name for p in plan] == _play_names(book), book
        assert all(p.tasks >= 1 for p in plan), (book, plan)


def test_bootstrap_plan_leaves_out_the_tasks_of_unselected_components():
    book = PLAYBOOKS_DIR / "bootstrap.yml"
    every = playbook_plan(book)
    demo = playbook_plan(book, skip_role=skip_unselected(["base", "docker"]))
    assert [p.name for p in demo] == [p.name for p in every]
    # containerd's tasks are not in the first play, the cluster layer's roles are not either
    assert demo[0].tasks < every[0].tasks
    assert all(d.tasks <= e.tasks for d, e in zip(demo, every, strict=True))
    assert sum(d.tasks for d in demo[1:]) < sum(e.tasks for e in every[1:])


def test_counting_rules(tmp_path: Path):
    role = tmp_path / "roles" / "r1"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "meta" / "argument_specs.yml").write_text("argument_specs:\n  main: {}\n")
    (role / "tasks" / "main.yml").write_text(
        "- name: a\n  ansible.builtin.debug: {}\n"
        "- name: b\n  ansible.builtin.import_tasks: more.yml\n")
    (role / "tasks" / "more.yml").write_text(
        "- name: c\n  ansible.builtin.debug: {}\n- ansible.builtin.meta: flush_handlers\n")
    (role / "tasks" / "other.yml").write_text("- name: d\n  ansible.builtin.debug: {}\n")
    (tmp_path / "inc.yml").write_text("- name: e\n  ansible.builtin.debug: {}\n")
    book = tmp_path / "site.yml"
    book.write_text("""
- name: Static
  hosts: all
  pre_tasks:
    - name: p
      ansible.builtin.debug: {}
  roles:
    - r1
  tasks:
    - name: blk
      block:
        - name: in block
          ansible.builtin.debug: {}
      rescue:
        - name: only on failure
          ansible.builtin.debug: {}
      always:
        - name: always
          ansible.builtin.debug: {}
  handlers:
    - name: h
      ansible.builtin.debug: {}
- name: Dynamic
  hosts: all
  gather_facts: false
  tasks:
    - name: inc
      ansible.builtin.include_tasks: inc.yml
    - name: role
      ansible.builtin.include_role:
        name: r1
        tasks_from: other
    - name: templated
      ansible.builtin.include_tasks: "{{ x }}.yml"
""")
    plan = playbook_plan(book)
    # facts 1 + p 1 + r1 (spec 1, a, c) 3 + block 1 + always 1 = 7; the import is no task
    assert plan[0] == PlayPlan("Static", 7, True)
    # inc 1 + e 1; include_role 1 + d 1 (no spec for "other"); templated include 1
    assert plan[1] == PlayPlan("Dynamic", 5, False)


def test_task_position_rendering():
    assert task_position(3, PlayPlan("p", 4, True)) == "3/4"
    assert task_position(3, PlayPlan("p", 40, False)) == "3/≤40"
    assert task_position(5, PlayPlan("p", 4, False)) == "5"  # a loop over an include
    assert task_position(2, None) == "2"


def test_an_unreadable_or_odd_playbook_has_no_plan(tmp_path: Path):
    assert playbook_plan(tmp_path / "missing.yml") == []
    bad = tmp_path / "bad.yml"
    bad.write_text("- name: [unclosed\n")
    assert playbook_plan(bad) == []
    loop = tmp_path / "loop.yml"
    loop.write_text("- name: L\n  hosts: all\n  tasks:\n    - ansible.builtin.import_tasks: "
                    "loop.yml\n")
    assert playbook_plan(loop)[0].name == "L"  # a cycle ends at the depth limit


def test_facts_gathered_again_in_a_later_play_make_the_count_a_bound(tmp_path: Path):
    """gathering = smart (ansible.cfg): a later play's "Gathering Facts" is announced only when
    a host has no cached facts, as a real run showed."""
    book = tmp_path / "two.yml"
    book.write_text("- name: One\n  hosts: all\n  tasks:\n    - ansible.builtin.debug: {}\n"
                    "- name: Two\n  hosts: all\n  tasks:\n    - ansible.builtin.debug: {}\n")
    assert playbook_plan(book) == [PlayPlan("One", 2, True), PlayPlan("Two", 2, False)]


def test_ansible_tags_in_yaml_are_read_as_plain_values(tmp_path: Path):
    book = tmp_path / "tags.yml"
    book.write_text("- name: T\n  hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.debug:\n        msg: !unsafe '{{ not templated }}'\n")
    assert playbook_plan(book) == [PlayPlan("T", 1, True)]
