# ruff: noqa
# %% correct: utilisation written out, solved for U = 1
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    servers = workers if workers < cores else cores
    # U = rate * S / servers = 1
    return servers * run["requests"] / run["server_cpu_s"]


# %% correct: per-worker capacity times the usable workers
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    per_worker = 1.0 / (run["server_cpu_s"] / run["requests"])
    return float(per_worker * min(workers, cores))


# %% wrong: forgets the worker count
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    return run["requests"] / run["server_cpu_s"]


# %% wrong: workers not capped by the cores
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    return workers * run["requests"] / run["server_cpu_s"]


# %% wrong: the wall-clock p50 as the service time
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    return min(workers, cores) / (run["p50_ms"] / 1000)


# %% wrong: the achieved rate of the run
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    return run["requests"] / run["duration_s"] * min(workers, cores)


# %% wrong: the cores, whatever the workers
def saturation_rate(run: dict, workers: int, cores: int) -> float:
    return cores * run["requests"] / run["server_cpu_s"]
