//go:build !unix

package symbols

import "os"

func mapFile(string) ([]byte, error) { return nil, os.ErrInvalid }
