"""An in-memory Hugging Face Hub dataset repository behind huggingface_hub's HTTP transport (``httpx2.MockTransport``).

Only the Hub's HTTP is faked: ``huggingface_hub`` and ``datasets`` run their real upload code against it. It answers
the endpoints a dataset push uses: create repo, repo info, tree listing, paths info, file download (with ranges),
preupload, the LFS batch API and the LFS ``PUT`` of each file's bytes (the path Parquet shards take; Xet is switched
off by the fixture), and commits (regular files inline, LFS files by oid, deletions). Nothing leaves the machine.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import unquote

import httpx2
import huggingface_hub
import pytest

ENDPOINT = "https://huggingface.co"


class FakeDatasetHub:
    """One repository per id; ``files[repo][path] = bytes``; ``requests`` records (method, path) of every call."""

    def __init__(self):
        self.files: dict[str, dict[str, bytes]] = {}
        self.lfs: dict[str, bytes] = {}
        self.lfs_paths: dict[str, set[str]] = {}
        self.commits: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ helpers
    def sha(self, repo: str) -> str:
        return hashlib.sha1(f"{repo}:{len(self.commits.get(repo, []))}".encode()).hexdigest()

    def _entry(self, repo: str, path: str) -> dict:
        data = self.files[repo][path]
        entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if path in self.lfs_paths.get(repo, set()):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return entry

    def _tree(self, repo: str, folder: str, recursive: bool) -> list[dict]:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        out, dirs = [], set()
        for path in sorted(self.files.get(repo, {})):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                dirs.add(prefix + rest.split("/")[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                dirs.update(prefix + "/".join(parts[:i + 1]) for i in range(len(parts)))
            out.append(self._entry(repo, path))
        return [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(dirs)] + out

    def _commit(self, repo: str, body: bytes) -> None:
        for line in body.splitlines():
            item = json.loads(line)
            value = item.get("value", {})
            if item["key"] == "file":
                self.files[repo][value["path"]] = base64.b64decode(value["content"])
                self.lfs_paths.setdefault(repo, set()).discard(value["path"])
            elif item["key"] == "lfsFile":
                self.files[repo][value["path"]] = self.lfs[value["oid"]]
                self.lfs_paths.setdefault(repo, set()).add(value["path"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                gone = value["path"].rstrip("/")
                for path in [p for p in self.files[repo] if p == gone or p.startswith(gone + "/")]:
                    del self.files[repo][path]
        self.commits.setdefault(repo, []).append(self.sha(repo))

    # ------------------------------------------------------------------ transport
    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = unquote(request.url.path)
        self.requests.append((request.method, path))
        method = request.method
        if path == "/api/repos/create":
            body = json.loads(request.content)
            repo = f"{body.get('organization') or 'me'}/{body['name']}" if "/" not in body["name"] else body["name"]
            self.files.setdefault(repo, {})
            return httpx2.Response(200, json={"url": f"{ENDPOINT}/datasets/{repo}", "name": repo})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m and method == "GET":
            repo = m.group(1)
            if repo not in self.files:
                return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"},
                                       json={"error": "Repository not found"})
            return httpx2.Response(200, json={
                "id": repo, "_id": "0" * 24, "sha": self.sha(repo), "private": False, "disabled": False,
                "siblings": [{"rfilename": p} for p in sorted(self.files[repo])], "tags": [], "downloads": 0,
                "likes": 0, "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z"})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            folder = (m.group(3) or "").strip("/")
            if folder and not any(f.startswith(folder + "/") for f in self.files.get(m.group(1), {})):
                return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"},
                                       json={"error": f"{folder} does not exist"})
            recursive = request.url.params.get("recursive", "false").lower() == "true"
            return httpx2.Response(200, json=self._tree(m.group(1), folder, recursive))
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/paths-info/([^/]+)", path)
        if m:
            repo = m.group(1)
            form = dict(httpx2.QueryParams(request.content.decode())) if request.content else {}
            try:
                wanted = json.loads(request.content).get("paths", [])
            except (ValueError, AttributeError):
                wanted = httpx2.QueryParams(request.content.decode()).get_list("paths") or [form.get("paths")]
            out = []
            for p in wanted:
                p = (p or "").strip("/")
                if p in self.files.get(repo, {}):
                    out.append(self._entry(repo, p))
                elif any(f.startswith(p + "/") for f in self.files.get(repo, {})):
                    out.append({"type": "directory", "path": p, "oid": "0" * 40, "size": 0})
            return httpx2.Response(200, json=out)
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/([^/]+)", path)
        if m:
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular",
                 "shouldIgnore": False, "oid": None} for f in files]})
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m:
            objects = json.loads(request.content)["objects"]
            return httpx2.Response(200, json={"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "authenticated": True,
                 "actions": {"upload": {"href": f"{ENDPOINT}/fake-lfs/{o['oid']}", "header": {}}}}
                for o in objects]})
        m = re.fullmatch(r"/fake-lfs/([0-9a-f]{64})", path)
        if m and method == "PUT":
            data = request.read()
            if hashlib.sha256(data).hexdigest() != m.group(1):
                return httpx2.Response(400, json={"error": "sha256 mismatch"})
            self.lfs[m.group(1)] = data
            return httpx2.Response(200)
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/([^/]+)", path)
        if m:
            repo = m.group(1)
            self._commit(repo, request.content)
            return httpx2.Response(200, json={"commitUrl": f"{ENDPOINT}/datasets/{repo}/commit/{self.sha(repo)}",
                                              "commitOid": self.sha(repo), "pullRequestUrl": None})
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            repo, rel = m.group(1), m.group(3)
            if rel not in self.files.get(repo, {}):
                return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"},
                                       json={"error": "Entry not found"})
            data = self.files[repo][rel]
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": self.sha(repo),
                       "Content-Length": str(len(data)), "Accept-Ranges": "bytes"}
            rng = request.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start, _, end = rng[6:].partition("-")
                start, end = int(start or 0), int(end) if end else len(data) - 1
                part = data[start:end + 1]
                headers.update({"Content-Length": str(len(part)),
                                "Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(data)}"})
                return httpx2.Response(206, headers=headers, content=b"" if method == "HEAD" else part)
            return httpx2.Response(200, headers=headers, content=b"" if method == "HEAD" else data)
        return httpx2.Response(404, json={"error": f"not part of this fake: {method} {path}"})


@pytest.fixture
def fake_dataset_hub(monkeypatch):
    """Route huggingface_hub's HTTP to a FakeDatasetHub, with Xet off (the LFS path runs) and a dummy token."""
    fake = FakeDatasetHub()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
