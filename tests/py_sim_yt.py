#!/usr/bin/env python3
"""yt (Debian's python3-yt) loads a snapshot written by `fieldflow simulate` as a Gadget HDF5
dataset: box, cosmology, particle count, total mass, positions and peculiar velocities agree with
what the file holds and what the simulation was given. Exit 77 (skipped) without yt or h5py."""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import yt
except ImportError as e:  # optional dependency
    print(f"skipped: {e}")
    sys.exit(77)

binary, source = sys.argv[1], sys.argv[2]
yt.set_log_level(40)
failures = []


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}: {detail}")
        print(f"FAIL: {name}: {detail}")


with tempfile.TemporaryDirectory() as tmp:
    box, n, z_out = 64.0, 16, 0.5
    subprocess.run([binary, "simulate", os.path.join(source, "configs/simulate.yaml"),
                    "--set", f"output_dir={tmp}", "--set", f"simulation.particles_per_side={n}",
                    "--set", f"simulation.box_size={box}", "--set", "simulation.steps=4",
                    "--set", f"simulation.output_redshifts=[{z_out}]", "--set", "paint.grid=8",
                    "--set", "sets.train.count=1", "--set", "sets.test.count=0"],
                   check=True, capture_output=True)
    path = os.path.join(tmp, "train", "sim_0000", "snap_000.hdf5")
    ds = yt.load(path)
    check("frontend", "Gadget" in type(ds).__name__, type(ds).__name__)
    width = ds.domain_width.in_units("Mpccm/h").v
    check("box", np.allclose(width, box, rtol=1e-12), width)
    check("redshift", abs(ds.current_redshift - z_out) < 1e-9, ds.current_redshift)
    check("omega_m", abs(ds.omega_matter - 0.3175) < 1e-12, ds.omega_matter)
    check("omega_lambda", abs(ds.omega_lambda - 0.6825) < 1e-12, ds.omega_lambda)
    check("hubble", abs(ds.hubble_constant - 0.6711) < 1e-12, ds.hubble_constant)
    ad = ds.all_data()
    pos = ad["PartType1", "particle_position"].in_units("Mpccm/h").v
    check("count", pos.shape == (n**3, 3), pos.shape)
    mass = ad["PartType1", "particle_mass"].in_units("Msun/h").v
    expect_total = 0.3175 * 2.77536627e11 * box**3  # Omega_m rho_crit L^3
    check("total mass", abs(mass.sum() / expect_total - 1) < 1e-6, mass.sum() / expect_total)
    with h5py.File(path, "r") as f:
        order = np.argsort(ad["PartType1", "particle_index"].v)
        ids = f["PartType1/ParticleIDs"][:]
        file_order = np.argsort(ids)
        coords = f["PartType1/Coordinates"][:].astype(np.float64) / 1000.0  # kpc/h -> Mpc/h
        vel = f["PartType1/Velocities"][:].astype(np.float64)
        a = f["Header"].attrs["Time"]
    check("ids", np.array_equal(np.sort(ids), np.arange(1, n**3 + 1)), "not 1..N")
    check("positions", np.allclose(pos[order], coords[file_order], atol=1e-5), "yt and h5py differ")
    # Gadget stores v_pec / sqrt(a); yt's particle_velocity is the peculiar velocity.
    v_yt = ad["PartType1", "particle_velocity"].in_units("km/s").v
    check("velocities", np.allclose(v_yt[order], vel[file_order] * np.sqrt(a), rtol=1e-5, atol=1e-3),
          f"max diff {np.abs(v_yt[order] - vel[file_order] * np.sqrt(a)).max():.3g} km/s")
    rms = np.sqrt((v_yt**2).mean())
    check("velocity scale", 50 < rms < 1500, f"rms {rms:.1f} km/s")
    print(f"yt {yt.__version__}: {type(ds).__name__}, {pos.shape[0]} particles, "
          f"total mass {mass.sum():.4e} Msun/h, rms velocity {rms:.1f} km/s")

if failures:
    sys.exit(1)
print("ok")
