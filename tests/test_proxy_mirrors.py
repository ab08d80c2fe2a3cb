"""Proxies and mirrors without a host: the declared patterns, validation messages that never
show a proxy password, the no_proxy the role computes, secret masking, the role defaults built
on the mirror bases, and doctor probing mirrors and the proxy instead of upstream."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from provision.cli import main
from provision.doctor import mirrors
from provision.doctor.netchecks import GITHUB, PKGS_K8S, REGISTRY_K8S, needed_urls
from provision.doctor.probe import build_script
from provision.patterns import PATTERNS
from provision.redact import secret_values

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Zq9-canary-pw"


def _filters():
    path = ROOT / "roles/proxy/filter_plugins/proxy_env.py"
    spec = importlib.util.spec_from_file_location("proxy_env", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("value", [
    "", "http://proxy.example.org:3128", "http://10.0.0.1:3128/", "https://[fd00::1]:8443",
    f"http://user:{PASSWORD}@proxy:3128", "http://u%40corp:p%21w@proxy:8080",
])
def test_proxy_urls_accepted(value):
    assert PATTERNS["proxy_url"].problem(value) is None


@pytest.mark.parametrize("value", [
    f"http://user:{PASSWORD}$x@proxy:3128", f'http://user:{PASSWORD}"@proxy:3128',
    f"http://user:{PASSWORD}@proxy:99999", f"socks5://user:{PASSWORD}@proxy:1080",
    f"http://user:{PASSWORD} x@proxy", f"http://user:{PASSWORD}\n@proxy", "proxy:3128",
    "http://proxy:3128/path", "-http://proxy",
])
def test_bad_proxy_urls_refused_without_showing_the_password(value):
    problem = PATTERNS["proxy_url"].problem(value)
    assert problem is not None
    assert PASSWORD not in problem


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("no_proxy_entry", ["localhost", ".example.org", "10.0.0.0/8", "fd00::/8", "*", "10.1.2.3"],
     ["a b", "10.0.0.0/99", "ex$ample", "x\ny", "-x", ""]),
    ("base_url", ["https://pkgs.k8s.io", "http://10.0.0.5:8080/mirror/k8s"],
     ["https://mirror/", "ftp://mirror", "https://u:p@mirror", "https://m/a b", "https://m/$x"]),
])
def test_mirror_and_no_proxy_patterns(name, good, bad):
    assert [v for v in good if PATTERNS[name].problem(v)] == []
    assert [v for v in bad if PATTERNS[name].problem(v) is None] == []


def test_validate_refuses_a_bad_proxy_naming_file_and_key_but_not_the_password(tmp_path,
                                                                              capsys):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"https_proxy": f"http://ops:{PASSWORD}@proxy:3128;rm", "no_proxy": ["a b"]},
        "children": {"control_plane": {"hosts": {"cp1": {"ansible_host": "192.0.2.1"}}}}}}))
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"{inv}" in err and "https_proxy:" in err and "no_proxy" in err
    assert "(hidden)" in err
    assert PASSWORD not in err


def test_validate_accepts_proxies_and_mirrors(tmp_path, capsys):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"http_proxy": f"http://ops:{PASSWORD}@proxy:3128",
                 "https_proxy": "http://proxy:3128", "no_proxy": [".corp.example", "10.0.0.0/8"],
                 "pkgs_k8s_url": "https://mirror.example/pkgs",
                 "registry_k8s_mirrors": ["https://registry-mirror.example"],
                 "docker_registry_mirrors": ["https://hub-mirror.example"],
                 "github_url": "https://mirror.example/github",
                 "github_raw_url": "https://mirror.example/raw",
                 "dl_k8s_url": "https://mirror.example/dl"},
        "children": {"control_plane": {"hosts": {"cp1": {"ansible_host": "192.0.2.1"}}}}}}))
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert PASSWORD not in out + err


def test_a_password_in_any_url_variable_is_masked():
    found = secret_values({"http_proxy": f"http://ops:{PASSWORD}@proxy:3128",
                           "https_proxy": "http://proxy:3128",
                           "nested": {"mirror": [f"https://u:{PASSWORD}x@m.example"]}})
    assert found == {PASSWORD, PASSWORD + "x"}


def test_no_proxy_has_the_cluster_networks_then_the_users_entries():
    f = _filters()
    no_proxy = f.provision_no_proxy([".corp.example", "localhost"], ["cp1", "w1"],
                                    ["192.0.2.10", "", "192.0.2.10", "10.0.0.5"],
                                    "10.244.0.0/16", "10.96.0.0/12", "cluster.local")
    assert no_proxy.split(",") == ["localhost", "127.0.0.1", "::1", "cp1", "w1", "192.0.2.10",
                                   "10.0.0.5", "10.244.0.0/16", "10.96.0.0/12", ".svc",
                                   ".cluster.local", ".corp.example"]
    env = f.provision_proxy_environment("http://p:3128", "", no_proxy)
    assert env == {"http_proxy": "http://p:3128", "HTTP_PROXY": "http://p:3128",
                   "no_proxy": no_proxy, "NO_PROXY": no_proxy}
    assert f.provision_proxy_environment("", "", no_proxy) == {}
    assert f.provision_apt_direct_hosts(no_proxy) == ["localhost", "127.0.0.1", "cp1", "w1",
                                                      "192.0.2.10", "10.0.0.5"]


def test_every_download_url_is_built_on_a_mirror_base():
    """No role default downloads from an upstream host directly: each starts with the one
    base variable of its host (pkgs_k8s_url, github_url, github_raw_url, dl_k8s_url)."""
    upstream = ("https://pkgs.k8s.io", "https://github.com", "https://raw.githubusercontent.com",
                "https://dl.k8s.io")
    bases = {"pkgs_k8s_url", "github_url", "github_raw_url", "dl_k8s_url"}
    problems = []
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            if name in bases or not isinstance(value, str):
                continue
            if value.startswith(upstream):
                problems.append(f"{path}: {name}: {value}")
    assert problems == []
    # and every download task runs with the proxy environment
    for rel in ("docker/tasks/repository.yml", "kubernetes_packages/tasks/repository.yml",
                "minikube/tasks/install.yml", "etcd_snapshot/tasks/download.yml",
                "cert_manager/tasks/install.yml", "metallb/tasks/install.yml",
                "ingress_nginx/tasks/install.yml", "cni/tasks/calico.yml",
                "kubeadm_upgrade/tasks/discover-cluster.yml"):
        tasks = yaml.safe_load((ROOT / "roles" / rel).read_text())
        downloads = [t for t in tasks if {"ansible.builtin.get_url", "ansible.builtin.unarchive",
                                          "ansible.builtin.uri"} & set(t)]
        assert downloads and all(t.get("environment") == "{{ provision_proxy_env }}"
                                 for t in downloads), rel


def test_doctor_probes_the_mirrors_instead_of_upstream():
    needs = needed_urls(mode="kubeadm", docker_source="distro", control_plane=True,
                        first_control_plane=True, ingress=False, metallb_pool=False)
    host_vars = {"pkgs_k8s_url": "https://mirror.example/pkgs",
                 "registry_k8s_mirrors": ["https://registry-mirror.example/"],
                 "github_url": "https://mirror.example/github"}
    urls = [u for u, _ in mirrors.mirrored(needs, host_vars)]
    assert urls == ["https://mirror.example/pkgs/", "https://registry-mirror.example/v2/",
                    "https://ghcr.io/v2/", "https://quay.io/v2/",
                    "https://mirror.example/github/"]  # no mirror variable for ghcr/quay
    assert PKGS_K8S not in urls and REGISTRY_K8S not in urls and GITHUB not in urls
    assert [u for u, _ in mirrors.mirrored(needs, {})] == [u for u, _ in needs]
    minikube = needed_urls(mode="minikube", docker_source="distro", control_plane=True,
                           first_control_plane=True, ingress=False, metallb_pool=False)
    assert REGISTRY_K8S in [u for u, _ in mirrors.mirrored(minikube, host_vars,
                                                           mode="minikube")]


def test_doctor_probes_through_the_proxy_and_hides_its_password():
    env = mirrors.proxy_env({"https_proxy": f"http://ops:{PASSWORD}@proxy:3128",
                             "no_proxy": [".corp.example"]})
    assert env == {"https_proxy": f"http://ops:{PASSWORD}@proxy:3128",
                   "no_proxy": ".corp.example"}
    script = build_script(["https://pkgs.k8s.io/"], exports=mirrors.proxy_exports(env))
    assert f"export https_proxy=http://ops:{PASSWORD}@proxy:3128\n" in script
    hostile = mirrors.proxy_exports({"https_proxy": "http://p:3128'; touch /tmp/x; '"})
    assert hostile == "export https_proxy='http://p:3128'\"'\"'; touch /tmp/x; '\"'\"''\n"
    assert script.index("export https_proxy") < script.index("curl ")
    assert mirrors.proxy_note(env) == "through the proxy http://(hidden)@proxy:3128"
    assert mirrors.proxy_env({"http_proxy": "", "https_proxy": ""}) == {}


def test_dropin_quotes_every_value_for_systemd():
    """The role's drop-in template rendered with its own filters (jinja2, no host): one quoted
    Environment= word per variable, '%' of a percent-encoded password doubled (a systemd
    specifier otherwise), nothing that could start a new directive."""
    import jinja2

    quote = importlib.util.spec_from_file_location(
        "systemd_quote", ROOT / "roles/proxy/filter_plugins/systemd_quote.py")
    module = importlib.util.module_from_spec(quote)
    quote.loader.exec_module(module)
    f = _filters()
    url = "http://ops:p%40ss;x@proxy.corp.example:3128"
    assert PATTERNS["proxy_url"].problem(url) is None
    env = f.provision_proxy_environment(url, url, f.provision_no_proxy([], ["cp1"], [],
                                                                       "10.244.0.0/16",
                                                                       "10.96.0.0/12"))
    jenv = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    jenv.filters.update(module.FilterModule().filters())
    text = jenv.from_string((ROOT / "roles/proxy/templates/http-proxy.conf.j2").read_text()
                            ).render(provision_proxy_env=env, ansible_managed="managed")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[Service]"
    assert len(lines) == 1 + 6
    assert 'Environment="HTTP_PROXY=http://ops:p%%40ss;x@proxy.corp.example:3128"' in lines
    assert all(line.startswith('Environment="') and line.endswith('"') for line in lines[1:])


def test_the_role_checks_the_proxy_settings_without_showing_a_password():
    """The proxy role's own check (filter provision_proxy_checked, with the role's patterns of
    vars/main.yml): what a role used without provision's CLI refuses, naming host and key."""
    from ansible.errors import AnsibleFilterError

    f = _filters()
    role_vars = yaml.safe_load((ROOT / "roles/proxy/vars/main.yml").read_text())
    url_re, no_proxy_re = role_vars["_proxy_url_re"], role_vars["_proxy_no_proxy_re"]
    good = f"http://ops:{PASSWORD}@proxy.corp.example:3128"
    assert f.provision_proxy_checked(good, "", [".corp.example", "10.0.0.0/8"], url_re,
                                     no_proxy_re, "cp1") == good
    assert f.provision_proxy_checked("", "", [], url_re, no_proxy_re, "cp1") == ""
    for http, https, no_proxy, says in [
            (f"http://ops:{PASSWORD}@proxy;x:3128", "", [], "http_proxy of cp1 must be"),
            ("", f"ftp://ops:{PASSWORD}@proxy:21", [], "https_proxy of cp1 must be"),
            ("", "", "a,b", "no_proxy of cp1 must be a list"),
            ("", "", ["ok.example", "bad host"], "not accepted: ['bad host']")]:
        with pytest.raises(AnsibleFilterError) as exc:
            f.provision_proxy_checked(http, https, no_proxy, url_re, no_proxy_re, "cp1")
        assert says in str(exc.value)
        assert PASSWORD not in str(exc.value)
