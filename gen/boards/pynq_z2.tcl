# Tern: Vivado project for the PYNQ-Z2 (xc7z020clg400-1), generated for model %%MODEL%%.
# Run from anywhere:   vivado -mode batch -source build_bitstream.tcl
# Produces %%STEM%%.bit and %%STEM%%.hwh next to this script (the pair PYNQ's Overlay loads),
# only when the routed design meets timing: otherwise it stops with the WNS and copies nothing
# (an earlier pair is removed first, so no stale bitstream is left looking like this one).
#
# Block design: processing_system7 (PYNQ-Z2 settings, FCLK0 = %%CLOCK_MHZ%% MHz)
#   M_AXI_GP0 -> AXI interconnect -> AXI DMA control + our AXI4-Lite registers
#   AXI DMA (simple mode, 64-bit streams): MM2S -> s_axis (pixels), m_axis (results) -> S2MM
#   DMA memory masters -> SmartConnect -> S_AXI_HP0 (64-bit)

set here [file normalize [file dirname [info script]]]
set part %%PART%%
set stem %%STEM%%
set top %%TOP%%
set proj_dir [file join $here vivado]
set rtl_files [list %%RTL_FILES%%]

# Nothing of an earlier run may pass for this run's result.
file delete -force [file join $here $stem.bit] [file join $here $stem.hwh]

create_project tern $proj_dir -part $part -force
# Use the TUL board files when they are installed (they carry the full PS7 preset).
set board [lindex [get_board_parts -quiet -latest_file_version {*pynq-z2*}] 0]
if {$board ne ""} {
    set_property board_part $board [current_project]
}
foreach f $rtl_files {
    add_files -norecurse [file join $here $f]
}
set_property top $top [current_fileset]
update_compile_order -fileset sources_1

create_bd_design "system"
create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps7
if {$board ne ""} {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} [get_bd_cells ps7]
} else {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "0" Master "Disable" Slave "Disable"} [get_bd_cells ps7]
    # Without the board files the PS7 gets the PYNQ-Z2's own settings, not another board's
    # defaults: one x16 DDR3L part (MT41K256M16 RE-125, 512 MB) on a 16-bit bus, the 50 MHz
    # PS input clock, bank voltages, UART0 on MIO 14..15, SD0, Ethernet, USB, QSPI. The DDR
    # board delays are left to the controller's training (write leveling, read gate, data eye).
    puts "Tern: the TUL PYNQ-Z2 board files are not installed: using the PYNQ-Z2's PS7 settings from this script\
 (to use the board preset instead, copy the pynq-z2 folder of github.com/Xilinx/PYNQ boards/Pynq-Z2 or of TUL's\
 board files into <Vivado>/data/boards/board_files and run again)"
    set_property -dict [list \
        CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ {50} \
        CONFIG.PCW_APU_PERIPHERAL_FREQMHZ {650} \
        CONFIG.PCW_PRESET_BANK0_VOLTAGE {LVCMOS 3.3V} \
        CONFIG.PCW_PRESET_BANK1_VOLTAGE {LVCMOS 1.8V} \
        CONFIG.PCW_UIPARAM_DDR_MEMORY_TYPE {DDR 3 (Low Voltage)} \
        CONFIG.PCW_UIPARAM_DDR_PARTNO {MT41K256M16 RE-125} \
        CONFIG.PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit} \
        CONFIG.PCW_UIPARAM_DDR_DRAM_WIDTH {16 Bits} \
        CONFIG.PCW_UIPARAM_DDR_DEVICE_CAPACITY {4096 MBits} \
        CONFIG.PCW_UIPARAM_DDR_SPEED_BIN {DDR3_1066F} \
        CONFIG.PCW_UIPARAM_DDR_FREQ_MHZ {533.333333} \
        CONFIG.PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL {1} \
        CONFIG.PCW_UIPARAM_DDR_TRAIN_READ_GATE {1} \
        CONFIG.PCW_UIPARAM_DDR_TRAIN_DATA_EYE {1} \
        CONFIG.PCW_QSPI_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_QSPI_GRP_SINGLE_SS_ENABLE {1} \
        CONFIG.PCW_SD0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_UART0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_UART0_UART0_IO {MIO 14 .. 15} \
        CONFIG.PCW_ENET0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_ENET0_ENET0_IO {MIO 16 .. 27} \
        CONFIG.PCW_ENET0_GRP_MDIO_ENABLE {1} \
        CONFIG.PCW_USB0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_GPIO_MIO_GPIO_ENABLE {1} \
    ] [get_bd_cells ps7]
}
set_property -dict [list \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {%%CLOCK_MHZ%%} \
    CONFIG.PCW_USE_M_AXI_GP0 {1} \
    CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
] [get_bd_cells ps7]

# Our accelerator, as an RTL module reference (no IP packaging step needed).
create_bd_cell -type module -reference $top tern_0

create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 axi_dma
set_property -dict [list \
    CONFIG.c_include_sg {0} \
    CONFIG.c_sg_include_stscntrl_strm {0} \
    CONFIG.c_sg_length_width {23} \
    CONFIG.c_m_axi_mm2s_data_width {64} \
    CONFIG.c_m_axis_mm2s_tdata_width {64} \
    CONFIG.c_m_axi_s2mm_data_width {64} \
    CONFIG.c_s_axis_s2mm_tdata_width {64} \
    CONFIG.c_mm2s_burst_size {16} \
    CONFIG.c_s2mm_burst_size {16} \
] [get_bd_cells axi_dma]

connect_bd_intf_net [get_bd_intf_pins axi_dma/M_AXIS_MM2S] [get_bd_intf_pins tern_0/s_axis]
connect_bd_intf_net [get_bd_intf_pins tern_0/m_axis] [get_bd_intf_pins axi_dma/S_AXIS_S2MM]

# Control: PS GP0 -> AXI interconnect -> DMA registers and ours (creates the reset block too).
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {Clk_master {/ps7/FCLK_CLK0 (%%CLOCK_MHZ_INT%% MHz)} \
    Clk_slave {Auto} Clk_xbar {Auto} Master {/ps7/M_AXI_GP0} Slave {/axi_dma/S_AXI_LITE} \
    intc_ip {New AXI Interconnect} master_apm {0}} [get_bd_intf_pins axi_dma/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {Clk_master {/ps7/FCLK_CLK0 (%%CLOCK_MHZ_INT%% MHz)} \
    Clk_slave {Auto} Clk_xbar {Auto} Master {/ps7/M_AXI_GP0} Slave {/tern_0/s_axi} \
    intc_ip {Auto} master_apm {0}} [get_bd_intf_pins tern_0/s_axi]
# Data: both DMA memory masters -> SmartConnect -> HP0.
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {Clk_master {Auto} \
    Clk_slave {/ps7/FCLK_CLK0 (%%CLOCK_MHZ_INT%% MHz)} Clk_xbar {Auto} Master {/axi_dma/M_AXI_MM2S} \
    Slave {/ps7/S_AXI_HP0} intc_ip {New AXI SmartConnect} master_apm {0}} [get_bd_intf_pins ps7/S_AXI_HP0]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {Clk_master {Auto} \
    Clk_slave {/ps7/FCLK_CLK0 (%%CLOCK_MHZ_INT%% MHz)} Clk_xbar {Auto} Master {/axi_dma/M_AXI_S2MM} \
    Slave {/ps7/S_AXI_HP0} intc_ip {Auto} master_apm {0}} [get_bd_intf_pins axi_dma/M_AXI_S2MM]

# Clock and reset of every block, where the automation has not wired them yet.
set reset_block [lindex [get_bd_cells -quiet rst_ps7*] 0]
foreach pin {tern_0/aclk axi_dma/m_axi_mm2s_aclk axi_dma/m_axi_s2mm_aclk axi_dma/s_axi_lite_aclk} {
    if {[llength [get_bd_nets -quiet -of_objects [get_bd_pins $pin]]] == 0} {
        connect_bd_net [get_bd_pins ps7/FCLK_CLK0] [get_bd_pins $pin]
    }
}
if {[llength [get_bd_nets -quiet -of_objects [get_bd_pins tern_0/aresetn]]] == 0} {
    connect_bd_net [get_bd_pins $reset_block/peripheral_aresetn] [get_bd_pins tern_0/aresetn]
}

assign_bd_address
validate_bd_design
save_bd_design

set wrapper [make_wrapper -files [get_files system.bd] -top]
add_files -norecurse $wrapper
set_property top system_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs 4
wait_on_run synth_1
if {[get_property PROGRESS [get_runs synth_1]] ne "100%"} {
    error "Tern: synthesis failed, see [file join $proj_dir tern.runs synth_1 runme.log]"
}
launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "Tern: implementation failed, see [file join $proj_dir tern.runs impl_1 runme.log]"
}

# Timing: the routed design must meet every constraint, or the bitstream is not handed on
# (a design that misses timing can compute wrong answers on the board, silently).
set wns [get_property STATS.WNS [get_runs impl_1]]
set whs [get_property STATS.WHS [get_runs impl_1]]
if {![string is double -strict $wns] || ![string is double -strict $whs]} {
    error "Tern: no timing results for impl_1 (WNS '$wns', WHS '$whs'): see [file join $proj_dir tern.runs impl_1]"
}
if {$wns < 0 || $whs < 0} {
    error "Tern: timing not met at FCLK0 = %%CLOCK_MHZ%% MHz: WNS = $wns ns (setup), WHS = $whs ns (hold);\
 no bitstream copied. See the timing summary under [file join $proj_dir tern.runs impl_1]; build with fewer lanes\
 or a lower clock"
}
puts "Tern: timing met at FCLK0 = %%CLOCK_MHZ%% MHz (WNS $wns ns, WHS $whs ns)"

# PYNQ's Overlay wants foo.bit and foo.hwh side by side.
set bit [file join [get_property DIRECTORY [get_runs impl_1]] system_wrapper.bit]
set hwh [lindex [glob -nocomplain [file join $proj_dir * sources_1 bd system hw_handoff system.hwh]] 0]
if {$hwh eq ""} {
    error "Tern: no system.hwh found under $proj_dir"
}
file copy -force $bit [file join $here $stem.bit]
file copy -force $hwh [file join $here $stem.hwh]
puts "Tern: wrote [file join $here $stem.bit] and [file join $here $stem.hwh]"
