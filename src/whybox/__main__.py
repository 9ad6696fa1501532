from whybox.cli import main

main()
