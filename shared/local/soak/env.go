package soak

import (
	"fmt"
	"os"
	"strconv"
)

// EnvInt is the non-negative integer in the environment variable name, def
// when it is unset: how make soak and make soak-chain pass their settings.
func EnvInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// EnvRate is the rate in the environment variable name, def when it is
// unset: in [0, 1], or [0, 1) unless allowOne (a soak whose every call
// faults never completes a run).
func EnvRate(name string, def float64, allowOne bool) (float64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 || (f == 1 && !allowOne) {
		if allowOne {
			return 0, fmt.Errorf("%s=%q: want a rate in [0, 1]", name, v)
		}
		return 0, fmt.Errorf("%s=%q: want a rate in [0, 1)", name, v)
	}
	return f, nil
}
