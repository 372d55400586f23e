"""io end to end with h5py as the independent side: h5py writes a two-file Gadget snapshot in kpc/h
(one part Blosc-compressed as Quijote's), `fieldflow paint` reads it and writes a grid file, h5py
reads /delta and its attributes back, and the NGP density is compared with numpy's own count.
Also: a grid written by h5py is read by `fieldflow pk`, and bad inputs give one-line errors.
Usage: py_io_h5py.py FIELDFLOW_BINARY SOURCE_DIR (exit 77 = skipped)."""
import os
import subprocess
import sys
import tempfile

from checklib import check, failures, finish, optional

h5py, np = optional("h5py", "numpy")

binary = sys.argv[1]


def run(*args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def write_gadget_part(path, pos_kpc, vel, ids, total, num_files, box_kpc, blosc):
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        h.attrs["BoxSize"] = box_kpc
        h.attrs["NumPart_ThisFile"] = np.array([0, len(pos_kpc), 0, 0, 0, 0], dtype=np.int32)
        h.attrs["NumPart_Total"] = np.array([0, total, 0, 0, 0, 0], dtype=np.uint32)
        h.attrs["NumPart_Total_HighWord"] = np.zeros(6, dtype=np.uint32)
        h.attrs["NumFilesPerSnapshot"] = np.int32(num_files)
        h.attrs["MassTable"] = np.array([0, 65.6, 0, 0, 0, 0])
        h.attrs["Redshift"] = 0.5
        h.attrs["Time"] = 1 / 1.5
        h.attrs["Omega0"] = 0.3175
        h.attrs["OmegaLambda"] = 0.6825
        h.attrs["HubbleParam"] = 0.6711
        p = f.create_group("PartType1")
        kw = {}
        if blosc:
            # Blosc (32001): level 5, bitshuffle (2), zstd (5), as Quijote.
            kw = dict(compression=32001, compression_opts=(0, 0, 0, 0, 5, 2, 5), chunks=(64, 3))
        p.create_dataset("Coordinates", data=pos_kpc.astype(np.float32), **kw)
        p.create_dataset("Velocities", data=vel.astype(np.float32), **kw)
        p.create_dataset("ParticleIDs", data=ids.astype(np.uint32))


with tempfile.TemporaryDirectory(prefix="fieldflow_py_io_") as tmp:
    rng = np.random.default_rng(4)
    box_mpch, n_grid, n_part = 100.0, 8, 1000
    cell = box_mpch / n_grid
    # Grid point i sits at i L/N: particles within 0.4 cells of a point, so NGP's choice is
    # unambiguous (positions below 0 wrap to the far side of the box).
    idx = rng.integers(0, n_grid, size=(n_part, 3))
    pos_mpch = np.mod((idx + rng.uniform(-0.4, 0.4, size=(n_part, 3))) * cell, box_mpch)
    pos_kpc = pos_mpch * 1000.0
    pos_kpc[0] = [0.0, 50_000.0, 100_000.0]  # z exactly at L: wraps into cell 0
    idx[0] = [0, 4, 0]
    vel = rng.normal(size=(n_part, 3))
    ids = np.arange(n_part)
    base = os.path.join(tmp, "snap_004")
    half = n_part // 2
    blosc_ok = True
    try:
        write_gadget_part(base + ".0.hdf5", pos_kpc[:half], vel[:half], ids[:half], n_part, 2,
                          box_mpch * 1000, blosc=True)
    except (ValueError, OSError) as e:
        print(f"note: h5py cannot write Blosc here ({e}); writing uncompressed")
        blosc_ok = False
        write_gadget_part(base + ".0.hdf5", pos_kpc[:half], vel[:half], ids[:half], n_part, 2,
                          box_mpch * 1000, blosc=False)
    write_gadget_part(base + ".1.hdf5", pos_kpc[half:], vel[half:], ids[half:], n_part, 2,
                      box_mpch * 1000, blosc=False)
    check("h5py wrote a Blosc-compressed part", blosc_ok)

    grid_path = os.path.join(tmp, "out", "grid.h5")
    r = run("paint", base, "--grid", str(n_grid), "--mas", "ngp", "--out", grid_path)
    check("paint exits 0", r.returncode == 0, r.stderr)
    # Progress goes to standard output; standard error is kept for the one error line.
    check("paint reports 2 files and kpc/h", "2 file(s)" in r.stdout and "kpc/h" in r.stdout, r.stdout)
    if r.returncode == 0:
        with h5py.File(grid_path, "r") as f:
            delta = f["delta"][...]
            check("/delta is float32 [8,8,8]", delta.dtype == np.float32 and delta.shape == (8, 8, 8),
                  f"{delta.dtype} {delta.shape}")
            check("box_size attribute", float(f.attrs["box_size"]) == box_mpch, f.attrs.get("box_size"))
            check("redshift attribute", float(f.attrs["redshift"]) == 0.5, f.attrs.get("redshift"))
        counts = np.zeros((n_grid,) * 3)
        np.add.at(counts, (idx[:, 0], idx[:, 1], idx[:, 2]), 1)
        expected = counts / counts.mean() - 1
        err = np.abs(delta - expected).max()
        check("NGP delta matches numpy's count (x, y, z row-major)", err < 1e-5, f"max error {err}")
        left = [n for n in os.listdir(os.path.dirname(grid_path)) if n != "grid.h5"]
        check("no temporary files left", not left, left)

    r = run("paint", base + ".1.hdf5", "--grid", "4", "--precision", "float64", "--out", grid_path)
    with h5py.File(grid_path, "r") as f:
        check("--precision float64 gives float64", f["delta"].dtype == np.float64, f["delta"].dtype)

    # A grid written by h5py (another tool) is accepted by fieldflow pk.
    other = os.path.join(tmp, "h5py_grid.h5")
    with h5py.File(other, "w") as f:
        f["delta"] = rng.normal(size=(8, 8, 8)).astype(np.float64)
        f.attrs["box_size"] = 64.0
        f.attrs["redshift"] = 0.0
    r = run("pk", other)
    check("pk reads an h5py grid", r.returncode == 0 and r.stdout.startswith("k,pk,nmodes"), r.stderr)

    # Bad inputs: one line naming the file.
    with h5py.File(other, "w") as f:
        f["delta"] = np.zeros((2, 3, 3), dtype=np.float32)
        f.attrs["box_size"] = 64.0
    r = run("pk", other)
    check("non-cubic grid refused", r.returncode == 1 and
          r.stderr.strip() == f"fieldflow: {other}: /delta has shape 2x3x3: the grid is not cubic",
          r.stderr)
    os.remove(base + ".1.hdf5")
    r = run("paint", base, "--grid", "8", "--out", grid_path)
    check("missing part refused", r.returncode == 1 and "missing part 1 of a snapshot in 2 files" in r.stderr
          and r.stderr.count("\n") == 1, r.stderr)

print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
finish()
