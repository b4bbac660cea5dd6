-- AlterTable
ALTER TABLE "GatewayClient" ADD COLUMN "compatProfile" TEXT;
