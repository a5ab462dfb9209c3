//go:build !unix

package remote

// watchSize does nothing where there is no SIGWINCH.
func watchSize(int, func(w, h int)) (stop func()) { return func() {} }
