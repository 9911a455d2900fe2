package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/linux"
)

// jsonModule is one module in `unwind mods -o json`.
type jsonModule struct {
	Name         string            `json:"name"`
	Address      string            `json:"address"` // the struct module
	Base         string            `json:"base"`
	Size         uint64            `json:"size"`
	TextEnd      string            `json:"text_end"`
	InitBase     string            `json:"init_base,omitempty"`
	InitSize     uint64            `json:"init_size,omitempty"`
	State        string            `json:"state"`
	Taints       string            `json:"taints"`
	TaintLetters string            `json:"taint_letters"`
	Symbols      int               `json:"symbols"`
	ORCEntries   int               `json:"orc_entries"`
	File         string            `json:"file,omitempty"`
	Sections     map[string]string `json:"sections,omitempty"`
}

// NewCmdMods builds `unwind mods VMCORE`.
func NewCmdMods(ios *IOStreams) *cobra.Command {
	output := outputText
	sf := &symbolFlags{}
	cmd := &cobra.Command{
		Use:   "mods VMCORE",
		Short: "List the loadable kernel modules of a vmcore: name, base, size, state, taint",
		Long: `mods lists the loadable modules of a kernel vmcore as the kernel's modules
list holds them (most recently loaded first, as lsmod shows them): name, base
address and size of the module's core memory, state (live, coming, going,
unformed), the taint letters the kernel prints after the module's name
("prodcrash(OE)"), how many symbols its in-memory symbol table has, and the
.ko file used for it, if any.

It needs the kernel's symbols (--sym vmlinux or --system-map) to find the
modules list, and the kernel's BTF for the layout of struct module: vmlinux's
.BTF section, or with System.map only the BTF the kernel keeps in its own
memory (CONFIG_DEBUG_INFO_BTF, on in distribution kernels).

Module files (.ko, for source lines, inlines and CFI in bt) are looked for by
module name under every --search DIR (recursively), under DIR/lib/modules/RELEASE
of every --debug-dir DIR (as Debian's -dbg package installs them), and among
the --sym files. Without a
build id in the module (Debian 12's 6.1 has none), a file is accepted only if
its symbols (names, sections, sizes, placed addresses) are the ones the
kernel holds for the module; a mismatch is refused with a warning, and the
module's frames are named from its in-memory symbol table.

-o json prints every module with its section addresses (sect_attrs).`,
		Example: `  unwind mods vmcore --sym vmlinux
  unwind mods vmcore --system-map System.map --search /usr/lib/debug/lib/modules/6.1.0-47-cloud-amd64
  unwind mods vmcore --sym vmlinux -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sf.given() {
				return usagef("mods needs the kernel's symbols: give vmlinux (--sym), --system-map or --debug-dir")
			}
			d, warnings, err := openDump(args[0], sf)
			if err != nil {
				return err
			}
			defer d.Close()
			if d.k == nil {
				return fmt.Errorf("%s is a %s, not a kernel vmcore: it has no modules", args[0], d.Kind())
			}
			mods, err := d.k.Modules()
			if err != nil && len(mods) == 0 {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range warnings {
				warn(ios, w)
			}
			if output == outputJSON {
				return writeJSON(ios.Out, map[string]any{"version": JSONVersion, "modules": modulesJSON(mods)})
			}
			writeMods(ios, mods)
			return nil
		},
	}
	sf.register(cmd.Flags())
	cmd.Flags().VarP(&output, "output", "o", "output format: text or json")
	return cmd
}

func modulesJSON(mods []linux.Module) []jsonModule {
	out := make([]jsonModule, 0, len(mods))
	for _, m := range mods {
		j := jsonModule{Name: m.Name, Address: hex(m.Address), Base: hex(m.Base), Size: m.Size, TextEnd: hex(m.TextEnd),
			State: m.State, Taints: hex(m.Taints), TaintLetters: m.TaintLetters, Symbols: len(m.Symbols), File: m.File,
			Sections: map[string]string{}}
		if m.InitBase != 0 {
			j.InitBase, j.InitSize = hex(m.InitBase), m.InitSize
		}
		if m.ORC != nil {
			j.ORCEntries = m.ORC.Len()
		}
		for name, a := range m.Sections {
			j.Sections[name] = hex(a)
		}
		out = append(out, j)
	}
	return out
}

func writeMods(ios *IOStreams, mods []linux.Module) {
	tw := tabwriter.NewWriter(ios.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBASE\tSIZE\tSTATE\tTAINT\tSYMBOLS\tFILE")
	for _, m := range mods {
		taint := m.TaintLetters
		if taint == "" {
			taint = "-"
		}
		file := m.File
		if file == "" {
			file = "-"
		}
		fmt.Fprintf(tw, "%s\t%016x\t%d\t%s\t%s\t%d\t%s\n", report.Escape(m.Name), m.Base, m.Size, m.State, taint, len(m.Symbols), report.Escape(file))
	}
	tw.Flush()
}
