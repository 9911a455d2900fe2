package linux

import (
	"fmt"

	"github.com/unwind-dev/unwind/symbols"
)

// maxORCBytes bounds the ORC tables read from a dump: Debian's 6.1 has
// 3.6 MB of them; a corrupt System.map must not make Open read gigabytes.
const maxORCBytes = 64 << 20

// loadORC reads vmlinux's ORC tables from the dump's memory, for a kernel
// opened without a vmlinux that has them (only System.map): the bytes
// between __start_orc_unwind_ip and __stop_orc_unwind_ip and between
// __start_orc_unwind and __stop_orc_unwind, at their run-time (KASLR)
// addresses, in the layout .orc_header (__start_orc_header, Linux 6.4+)
// or the release names. The table covers the kernel's text, _stext to
// _etext, and its init text, _sinittext to _einittext: freed after boot,
// but the boot CPU's idle task still returns into start_kernel there.
func (k *Kernel) loadORC() error {
	sym := func(name string) (uint64, error) {
		s, ok := k.set.ByName(name)
		if !ok {
			return 0, fmt.Errorf("no %s in the symbols", name)
		}
		return s.Addr, nil
	}
	var addr [6]uint64
	for i, name := range [...]string{"__start_orc_unwind_ip", "__stop_orc_unwind_ip", "__start_orc_unwind", "__stop_orc_unwind", "_stext", "_etext"} {
		a, err := sym(name)
		if err != nil {
			return err
		}
		addr[i] = a
	}
	ipLo, ipHi, orcLo, orcHi, text, etext := addr[0], addr[1], addr[2], addr[3], addr[4], addr[5]
	if ipHi < ipLo || orcHi < orcLo || ipHi-ipLo > maxORCBytes || orcHi-orcLo > maxORCBytes || etext <= text {
		return fmt.Errorf("ORC table bounds [%#x, %#x) and [%#x, %#x) are not plausible", ipLo, ipHi, orcLo, orcHi)
	}
	read := func(lo, hi uint64, what string) ([]byte, error) {
		b := make([]byte, hi-lo)
		if n, err := k.mem.ReadAt(b, lo); n != len(b) {
			return nil, fmt.Errorf("reading %s at %#x (%d bytes): read %d: %v", what, lo, len(b), n, err)
		}
		return b, nil
	}
	var header []byte
	if lo, err := sym("__start_orc_header"); err == nil {
		hi, err := sym("__stop_orc_header")
		if err != nil || hi < lo || hi-lo > 64 {
			return fmt.Errorf(".orc_header bounds not plausible")
		}
		if header, err = read(lo, hi, ".orc_header"); err != nil {
			return err
		}
	}
	layout, err := symbols.ORCLayoutOf(header, k.release())
	if err != nil {
		return err
	}
	ip, err := read(ipLo, ipHi, ".orc_unwind_ip")
	if err != nil {
		return err
	}
	orc, err := read(orcLo, orcHi, ".orc_unwind")
	if err != nil {
		return err
	}
	t, err := symbols.NewORCTable(ip, ipLo, orc, layout)
	if err != nil {
		return err
	}
	k.set.AddORC(t, text, etext)
	if lo, err := sym("_sinittext"); err == nil {
		if hi, err := sym("_einittext"); err == nil && hi > lo {
			k.set.AddORC(t, lo, hi)
		}
	}
	return nil
}
