package localstack

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes an emulator die with the process that started it (a test binary killed by its timeout runs no cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
