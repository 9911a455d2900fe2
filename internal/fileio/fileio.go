// Package fileio opens the files a dump or a user names — dumps, symbol
// files, the paths a core's NT_FILE note records — only when they are
// regular files, so that a named pipe, a device or a directory given or
// recorded there is refused at once instead of blocking an open or a read
// forever.
package fileio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by the error of an open of anything but a
// regular file (after symbolic links): a named pipe, a device, a socket or
// a directory.
var ErrNotRegular = errors.New("not a regular file")

// CheckRegular returns nil when path names a regular file, else a
// *fs.PathError (wrapping ErrNotRegular when something else is there).
func CheckRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return regular(path, fi.Mode())
}

func regular(path string, m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	what := "a special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m.IsDir():
		what = "a directory"
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is %s", ErrNotRegular, what)}
}

// OpenRegular opens path for reading when it is a regular file. It checks
// before opening and opens without blocking (O_NONBLOCK, which changes
// nothing for a regular file), then checks the opened file again, so a
// name swapped for a named pipe in between cannot hang the caller either.
func OpenRegular(path string) (*os.File, error) {
	if err := CheckRegular(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = regular(path, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadRegular reads the whole of path when it is a regular file.
func ReadRegular(path string) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	return b[:n], err
}
