from netops.startup import main

main()
