package dump

import (
	"strconv"
	"strings"
)

// VMCoreInfo is the parsed VMCOREINFO note of a kernel dump: KEY=VALUE lines
// such as OSRELEASE, PAGESIZE, SYMBOL(name), OFFSET(struct.field),
// NUMBER(phys_base), KERNELOFFSET and CRASHTIME.
type VMCoreInfo map[string]string

func parseVMCoreInfo(b []byte) VMCoreInfo {
	v := VMCoreInfo{}
	for _, line := range strings.Split(string(b), "\n") {
		k, val, ok := strings.Cut(line, "=")
		if ok && len(v) < 4096 {
			v[k] = strings.TrimRight(val, "\x00")
		}
	}
	return v
}

// Symbol returns SYMBOL(name) as an address.
func (v VMCoreInfo) Symbol(name string) (uint64, bool) {
	return v.Hex("SYMBOL(" + name + ")")
}

// Number returns NUMBER(name), a signed decimal.
func (v VMCoreInfo) Number(name string) (int64, bool) {
	s, ok := v["NUMBER("+name+")"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Hex returns the value of key read as a hexadecimal number (with or
// without 0x), as KERNELOFFSET and SYMBOL(name) are written.
func (v VMCoreInfo) Hex(key string) (uint64, bool) {
	s, ok := v[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	return n, err == nil
}

// Offset returns OFFSET(name), a structure member's byte offset.
func (v VMCoreInfo) Offset(name string) (uint64, bool) {
	s, ok := v["OFFSET("+name+")"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
