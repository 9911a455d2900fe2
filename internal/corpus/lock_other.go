//go:build !unix

package corpus

func lockFile(string) (func(), error) { return func() {}, nil }
