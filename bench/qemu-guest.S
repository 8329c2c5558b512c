/* SPDX-License-Identifier: MIT */
/* godwit-qemu-guest: the smallest guest QEMU's live migration can be
 * measured with. A multiboot (ELF32) kernel, loaded with
 *   qemu-system-x86_64 -kernel godwit-qemu-guest.elf -append N
 * N = 0 (or no number): halts with interrupts off, so guest RAM stays as
 * the memory file holds it (an idle VM). N > 0: 100 times a second (PIT
 * tick, then hlt) it writes one word in every 4 KiB page of N MiB from
 * 64 MiB on, so N MiB stay dirty during the migration, like a source
 * writer's hot set, at little CPU. Either way it first writes
 * "godwit-qemu-guest ready" to the debug console (port 0x402). The last run of digits on the multiboot
 * command line is N (QEMU puts the kernel's path before -append). */

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0
    .set HOT_BASE, 0x4000000 /* 64 MiB: above the kernel, the BIOS and fw_cfg's copies */
    .set PIT_DIVISOR, 11932  /* 1193182 Hz / 100 */

    .text
    .code32
    .align 4
multiboot_header: /* in the first 8 KiB of the file: the multiboot magic */
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

    .globl _start
_start:
    cli
    mov $stack_top, %esp
    call parse_hot_mib /* ecx = N */
    call say_ready
    test %ecx, %ecx
    jz halt_forever
    lgdt gdt_pointer
    ljmp $0x08, $flat_code
flat_code:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    push %ecx
    call fill_idt
    lidt idt_pointer
    call remap_pic
    call start_pit
    pop %ecx
dirty_pass: /* interrupts off */
    mov $HOT_BASE, %edi
    mov %ecx, %edx
    shl $8, %edx /* pages = MiB * 256 */
dirty_page:
    incl (%edi)
    add $4096, %edi
    dec %edx
    jnz dirty_page
    sti /* takes effect after the next instruction: the tick cannot come before hlt */
    hlt
    jmp dirty_pass /* not reached: tick returns to dirty_pass itself */

halt_forever:
    hlt
    jmp halt_forever

/* ecx = the last run of decimal digits of the multiboot command line
 * (ebx: the multiboot information; flag bit 2: cmdline at offset 16). */
parse_hot_mib:
    xor %ecx, %ecx
    testl $4, (%ebx)
    jz 3f
    mov 16(%ebx), %esi
1:  lodsb
    test %al, %al
    jz 3f
    cmp $'0', %al
    jb 2f
    cmp $'9', %al
    ja 2f
    imul $10, %ecx
    movzbl %al, %eax
    sub $'0', %eax
    add %eax, %ecx
    jmp 1b
2:  xor %ecx, %ecx /* not a digit: a later number wins */
    jmp 1b
3:  ret

/* Writes "godwit-qemu-guest ready\n" to the debug console (port 0x402,
 * QEMU's -device isa-debugcon), so the benchmark migrates a guest that has
 * left the BIOS. Keeps ecx. */
say_ready:
    mov $ready_text, %esi
1:  lodsb
    test %al, %al
    jz 2f
    mov $0x402, %dx
    out %al, %dx
    jmp 1b
2:  ret

/* Every one of the 256 vectors is an interrupt gate to tick. */
fill_idt:
    mov $idt, %edi
    mov $256, %ecx
    mov $tick, %eax
1:  mov %ax, (%edi)         /* offset 0-15 */
    movw $0x08, 2(%edi)     /* code selector */
    movw $0x8E00, 4(%edi)   /* present, ring 0, 32-bit interrupt gate */
    mov %eax, %edx
    shr $16, %edx
    mov %dx, 6(%edi)        /* offset 16-31 */
    add $8, %edi
    loop 1b
    ret

/* The PICs at vectors 0x20 and 0x28, only IRQ 0 (the PIT) unmasked. */
remap_pic:
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xA0
    mov $0x20, %al
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xA1
    mov $4, %al
    out %al, $0x21
    mov $2, %al
    out %al, $0xA1
    mov $1, %al
    out %al, $0x21
    out %al, $0xA1
    mov $0xFE, %al
    out %al, $0x21
    mov $0xFF, %al
    out %al, $0xA1
    ret

/* PIT channel 0, rate generator at 100 Hz. */
start_pit:
    mov $0x34, %al
    out %al, $0x43
    mov $(PIT_DIVISOR & 0xFF), %al
    out %al, $0x40
    mov $(PIT_DIVISOR >> 8), %al
    out %al, $0x40
    ret

/* The tick drops its interrupt frame and starts the next pass (with
 * interrupts off, as the gate left them) instead of returning: iret in
 * 32-bit protected mode is what KVM cannot emulate when a dirty-logging
 * fault lands on it (nested KVM showed "emulation failure" on iret). */
tick:
    mov $stack_top, %esp
    mov $0x20, %al
    out %al, $0x20 /* end of interrupt */
    jmp dirty_pass

    .data
ready_text:
    .asciz "godwit-qemu-guest ready\n"
    .align 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF /* 0x08: flat 32-bit code */
    .quad 0x00CF92000000FFFF /* 0x10: flat data */
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long gdt
idt_pointer:
    .word 256 * 8 - 1
    .long idt

    .bss
    .align 4096 /* the tables and the stack in pages of their own, apart from the code */
idt:
    .skip 256 * 8
stack:
    .skip 4096
stack_top:

    .section .note.GNU-stack, "", @progbits
