package localchain_test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes an emulator die with the test binary, even when a test timeout kills it before the cleanups run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
