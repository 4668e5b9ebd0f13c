package wire

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSendfileChunk bounds one sendfile(2) call; Linux caps a call near
// 2 GiB anyway.
const maxSendfileChunk = 1 << 30

// sendFile writes n bytes of f from off to the socket behind conn with
// sendfile(2) and an explicit offset. Go's own sendfile path uses the file's
// current offset, which concurrent fetches of one segment would race on.
// When the socket buffer is full, sendfile returns EAGAIN and we park on the
// runtime poller until the socket is writable.
func sendFile(conn syscall.RawConn, f *os.File, off, n int64) (int64, error) {
	fileConn, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		written int64
		opErr   error
	)
	// Control pins the file descriptor for the duration of the call, so a
	// concurrent Close cannot recycle it under us.
	ctlErr := fileConn.Control(func(src uintptr) {
		werr := conn.Write(func(dst uintptr) bool {
			for written < n {
				chunk := n - written
				if chunk > maxSendfileChunk {
					chunk = maxSendfileChunk
				}
				pos := off + written
				m, e := unix.Sendfile(int(dst), int(src), &pos, int(chunk))
				if m > 0 {
					written += int64(m)
				}
				switch {
				case e == unix.EAGAIN:
					return false // wait until writable, then call us again
				case e == unix.EINTR:
					continue
				case e != nil:
					opErr = os.NewSyscallError("sendfile", e)
					return true
				case m == 0:
					// The file is shorter than the range: it was truncated
					// under us. The frame can no longer be completed.
					opErr = fmt.Errorf("sendfile: %w after %d of %d bytes", io.ErrUnexpectedEOF, written, n)
					return true
				}
			}
			return true
		})
		if opErr == nil {
			opErr = werr
		}
	})
	if ctlErr != nil {
		return written, ctlErr
	}
	return written, opErr
}
