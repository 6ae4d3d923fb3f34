# ruff: noqa
# %% correct: vCPU-hours first
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if utilisation <= 0 or utilisation > 1:
        raise ValueError("utilisation must be in (0, 1]")
    vcpu_hours = 1e6 * cpu_ms_per_request / 3.6e6
    return vcpu_hours / utilisation * price_per_vcpu_hour


# %% correct: price per vCPU-second
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if not (0 < utilisation <= 1):
        raise ValueError(f"utilisation {utilisation} outside (0, 1]")
    per_second = price_per_vcpu_hour / 3600
    return (cpu_ms_per_request / 1000) * 1_000_000 * per_second / utilisation


# %% wrong: idle time not paid for (utilisation ignored)
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation")
    return 1e6 * cpu_ms_per_request / 1000 / 3600 * price_per_vcpu_hour


# %% wrong: multiplies by the utilisation
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation")
    return 1e6 * cpu_ms_per_request / 1000 / 3600 * price_per_vcpu_hour * utilisation


# %% wrong: milliseconds treated as seconds
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation")
    return 1e6 * cpu_ms_per_request / 3600 * price_per_vcpu_hour / utilisation


# %% wrong: per minute instead of per hour
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation")
    return 1e6 * cpu_ms_per_request / 1000 / 60 * price_per_vcpu_hour / utilisation


# %% wrong: no check of the utilisation
def cost_per_million(cpu_ms_per_request: float, price_per_vcpu_hour: float, utilisation: float) -> float:
    return 1e6 * cpu_ms_per_request / 1000 / 3600 * price_per_vcpu_hour / max(utilisation, 1e-9)
